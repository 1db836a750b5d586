"""Accounting for a shared federation: priorities with aging, fair share between users,
quotas, prices and cost. The rules are pure (no I/O), like the scheduler; the proxy installs
them into the store's claim order and its placement path. See docs/accounting.md."""
