"""federation.yaml ``accounting``: bad values are refused in one line naming the file, the
field and the value; the defaults are equal shares, no caps, no budgets."""

from __future__ import annotations

import pytest

from batchfed_lab.config import load_federation
from batchfed_lab.config.federation import FederationConfig
from batchfed_lab.errors import ConfigError


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "quotas: {users: {ada: {cores: -1}}}",
            r"^fed\.yaml: federation\.accounting\.quotas\.users\.ada\.cores = -1: must be greater than 0$",
        ),
        ("fair_share: {shares: {'ada lovelace': 2}}", r"'ada lovelace' is not a user or group name"),
        ("fair_share: {shares: {ada: 0}}", r"share of 'ada' must be > 0, not 0"),
        ("budgets: {users: {ada: -5}}", r"budget of 'ada' must be ≥ 0, not -5"),
        ("priority_aging_seconds: 0", r"priority_aging_seconds = 0: must be greater than 0"),
        ("fair_shares: {}", r"fair_shares"),
    ],
)
def test_bad_accounting_is_refused_in_one_line(tmp_path, body, message):
    f = tmp_path / "fed.yaml"
    f.write_text(f"federation:\n  accounting:\n    {body}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_federation(f)
    assert "\n" not in str(caught.value)


def test_the_defaults_share_equally_and_cap_nothing():
    acct = FederationConfig().federation.accounting
    assert acct.fair_share.enabled and acct.fair_share.shares == {} and acct.fair_share.half_life_hours == 168
    assert acct.quotas.users == {} and acct.quotas.federation.cores is None and acct.budgets.users == {}
