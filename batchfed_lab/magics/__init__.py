"""batchfed_lab.magics."""
