"""batchfed_lab.batch."""
