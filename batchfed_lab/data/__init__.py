"""Data in and out of tasks: storage accounts by name, blob transfers, and the mapping of
``input_data`` / ``output_data`` onto Batch resource files and output files."""
