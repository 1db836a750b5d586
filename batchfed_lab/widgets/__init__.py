"""batchfed_lab.widgets."""
