"""The ``{name}`` rule of ``%%fed`` cells: only identifiers naming a user variable change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchfed_lab.magics.fed import substitute

NS = {"who": "ann", "n": 3, "HOME": "/not/this", "job": "j-1"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("echo {who}", "echo ann"),
        ("id: run-{n}", "id: run-3"),
        ("echo ${HOME}", "echo ${HOME}"),  # shell variables survive even when a user variable has the name
        ("echo {0} {1:03d}", "echo {0} {1:03d}"),  # sweep placeholders survive
        ("echo {{who}}", "echo {who}"),  # escaped
        ("echo {nobody}", "echo {nobody}"),  # not a user variable: left alone
        ("c: {pool: {location: eastus}}", "c: {pool: {location: eastus}}"),  # flow mappings
        ("c: {pool: {location: {job}}}", "c: {pool: {location: j-1}}"),  # a variable inside one
        ("echo ${{HOME}}", "echo ${HOME}"),
        ("{who}{who}", "annann"),
    ],
)
def test_rule(text: str, expected: str) -> None:
    assert substitute(text, NS) == expected


@given(st.text(alphabet=st.characters(blacklist_characters="{}")))
def test_text_without_braces_is_unchanged(text: str) -> None:
    assert substitute(text, NS) == text


@given(st.text(alphabet="{}$abc0 :_"), st.dictionaries(st.sampled_from(["a", "b", "c", "_a"]), st.text("xyz", max_size=3)))
def test_only_escapes_change_without_variables(text: str, ns: dict[str, str]) -> None:
    """With no user variable, the only change is {{name}} → {name}."""
    out = substitute(text, {})
    assert out.replace("{", "").replace("}", "") == text.replace("{", "").replace("}", "")
    assert len(out) <= len(text)
    assert substitute(text, ns).count("$") == text.count("$")
