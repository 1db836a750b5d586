"""Configuration: workspace settings and the federation / pool / jobs models."""
