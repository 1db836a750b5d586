"""batchfed_lab.scheduler."""
