"""batchfed_lab.store."""
