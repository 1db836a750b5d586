"""badinput tests: a package, so its package-scoped stack ends with its last test."""
