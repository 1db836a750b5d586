"""batchfed_lab."""
