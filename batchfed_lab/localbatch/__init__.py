"""batchfed_lab.localbatch."""
