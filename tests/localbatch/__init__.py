"""localbatch tests (a package so the tests can import .lb_helpers)."""
