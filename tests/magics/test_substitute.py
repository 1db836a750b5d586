"""The ``{name}`` rule of ``%%fed`` cells: only identifiers naming a user variable change."""

from __future__ import annotations

import pytest
import yaml
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


# -- values are YAML scalars: a value can never change the document's structure ------------------
JOB = "job_specifications:\n- id: a\n  tasks:\n  - command: echo {v}\n"
INJECTION = "x\n- id: b\n  tasks:\n  - command: evil"


def test_a_newline_in_a_value_adds_no_job() -> None:
    doc = yaml.safe_load(substitute(JOB, {"v": INJECTION}))
    assert len(doc["job_specifications"]) == 1
    assert doc["job_specifications"][0]["tasks"] == [{"command": f"echo {INJECTION}"}]


@pytest.mark.parametrize(
    "text, value, expected",
    [
        ("id: {v}", "a: b", {"id": "a: b"}),  # would be a mapping
        ("id: {v}", "[1, 2]", {"id": "[1, 2]"}),  # would be a list
        ("id: {v}", "x # y", {"id": "x # y"}),  # would lose its end to a comment
        ("id: {v}", "", {"id": ""}),  # would be null
        ("id: {v}", "- x", {"id": "- x"}),
        ("f: {k: {v}, n: 1}", "1, m: 2", {"f": {"k": "1, m: 2", "n": 1}}),  # flow mapping
        ('q: "say {v}"', 'a "quote" \\ and\nline', {"q": 'say a "quote" \\ and\nline'}),  # double-quoted
        ("q: 'say {v}'", "it's\nfine", {"q": "say it's\nfine"}),  # single-quoted
        ("b: |\n  echo {v}\n  done\nn: 1\n", "one\ntwo\nn: 2", {"b": "echo one\ntwo\nn: 2\ndone\n", "n": 1}),  # block
        ("b: >-\n  echo {v}\nn: 1\n", "x\n\ny", {"b": "echo x\n\ny", "n": 1}),  # folded block
        ("# about {v}\nn: 1\n", "x\nm: 2", {"n": 1}),  # a comment
        ("n: {v}", "\u2028\x85\t\x07", {"n": "\u2028\x85\t\x07"}),  # line separators and control characters
    ],
)
def test_values_stay_scalars(text: str, value: str, expected: object) -> None:
    assert yaml.safe_load(substitute(text, {"v": value})) == expected


@pytest.mark.parametrize(
    "text, value, expected",
    [
        ("n: {v}", 3, {"n": 3}),  # numbers stay numbers, as before
        ("n: {v}", -2.5, {"n": -2.5}),
        ("n: {v}", True, {"n": True}),
        ("id: run-{v}", 3, {"id": "run-3"}),
        ("c: echo {v}, then {0}", "ann", {"c": "echo ann, then {0}"}),  # a plain value is inserted as it is
    ],
)
def test_plain_values_are_inserted_as_before(text: str, value: object, expected: object) -> None:
    out = substitute(text, {"v": value})
    assert yaml.safe_load(out) == expected and out == text.replace("{v}", str(value))


TEMPLATES = [
    "job_specifications:\n- id: j\n  tasks:\n  - command: echo {v} done\n",
    'job_specifications:\n- id: j\n  tasks:\n  - command: "echo {v}"\n',
    "job_specifications:\n- id: j\n  tasks:\n  - command: 'echo {v}'\n",
    "job_specifications:\n- id: j\n  tasks:\n  - command: |\n      echo {v}\n",
    "job_specifications: [{id: j, tasks: [{command: pre-{v}}]}]\n",
    "job_specifications:\n- id: {v}\n  tasks: [{command: x}]\n",
]


@given(st.sampled_from(TEMPLATES), st.text())
def test_no_value_changes_the_structure(template: str, value: str) -> None:
    marker = "MARKER"
    shape = yaml.safe_load(template.replace("{v}", marker))
    got = yaml.safe_load(substitute(template, {"v": value}))
    job, want = got["job_specifications"], shape["job_specifications"]
    assert len(job) == 1 and set(job[0]) == set(want[0]) and len(job[0]["tasks"]) == 1
    if marker in want[0]["id"]:
        # a whole plain scalar: a number (or true, null) may still be read as one, as before
        assert job[0]["id"] == value or not isinstance(job[0]["id"], (str, list, dict))
    else:
        assert job[0]["tasks"][0]["command"] == want[0]["tasks"][0]["command"].replace(marker, value)
