"""batchfed_lab.proxy."""
