"""The "never" arrows of DESIGN.md §1, checked on the source of batchfed_lab/.

Each row of ``RULES`` is one rule of the house: which modules it covers, what they must
not import (``never``) or the only parts of batchfed_lab they may import (``only``), and
why. Every import counts: at module level, inside functions and under ``TYPE_CHECKING``.
A name is "imported" when a module or package of batchfed_lab is named; ``x`` covers
``x`` and everything below it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "batchfed_lab"
ROOT = "batchfed_lab"

SURFACE_MAY_USE = ("client", "results", "errors", "frames", "commands", "_version")


@dataclass(frozen=True)
class Rule:
    covers: tuple[str, ...]  # modules or packages (relative to batchfed_lab) the rule is about
    why: str
    never: tuple[str, ...] = ()  # parts of batchfed_lab they must not import
    only: tuple[str, ...] | None = None  # else: the only parts of batchfed_lab they may import (besides themselves)


RULES: tuple[Rule, ...] = (
    Rule(
        ("scheduler",),
        "the scheduler is pure: no I/O, no store, no Batch",
        never=("store", "batch", "proxy", "localbatch", "client", "frames", "data", "deploy"),
    ),
    Rule(
        ("localbatch",),
        "localbatch is a separate program; it shares only the runtime files helper, the "
        "error classes it raises and the workspace folder with its settings",
        only=("runtime", "errors", "config.workspace"),
    ),
    Rule(("runtime",), "the shared runtime-files leaf of localbatch and the proxy", only=()),
    Rule(("config",), "config is the bottom layer: nothing of ours but small shared types", only=("errors",)),
    Rule(
        ("batch",),
        "the adapter knows Batch and config, not who drives it",
        never=("localbatch", "proxy", "store", "client", "commands", "cli", "cli_fed", "magics", "widgets"),
    ),
    Rule(
        ("proxy",),
        "the proxy drives Batch through the adapter, never localbatch directly",
        never=("localbatch", "client", "commands", "cli", "cli_fed", "magics", "widgets"),
    ),
    Rule(
        ("client",),
        "the client reaches Batch, localbatch and the proxy through their packages' entry points",
        never=("batch.", "localbatch.", "proxy.", "commands", "cli", "magics", "widgets"),
    ),
    Rule(
        ("results",),
        "results are what the client returns; they do not call back into it",
        never=("client", "commands", "cli", "magics", "widgets"),
    ),
    Rule(
        ("deploy",),
        "the deployment reads config and the store (and the pure size catalog); it drives no proxy or Batch itself",
        only=("config", "store", "errors", "scheduler.catalog", "_version"),
    ),
    Rule(
        ("data",),
        "data knows storage accounts and blobs: config, the runtime-files helper and the Azurite launcher",
        only=("config", "errors", "runtime", "store.emulator"),
    ),
    Rule(
        ("accounting",),
        "accounting rules are pure like the scheduler: config, scheduler types and the store's claim-order shape only",
        only=("config", "scheduler", "store.ordering", "store.identity", "errors"),
    ),
    Rule(("store.ordering",), "the claim-order shape is a leaf the accounting rules and the store share", only=()),
    Rule(("frames",), "frames build DataFrames from client results, without the client", never=("client",)),
    Rule(
        ("cli", "cli_fed", "commands", "magics", "widgets"),
        "user surfaces are thin shells over the client API",
        only=SURFACE_MAY_USE,
    ),
)

#: the one command line: the only modules that build click commands
CLICK_USERS = {"batchfed_lab.cli", "batchfed_lab.cli_fed"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (absolute dotted names; ``from pkg import sub`` names ``pkg.sub``)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names if _is_module(f"{module}.{a.name}"))
    return found


def _under(name: str, part: str) -> bool:
    """Is ``name`` (dotted, absolute) the part of batchfed_lab ``part`` or below it? A part
    ending in ``.`` means strictly below it (a package's submodules, not the package)."""
    full = f"{ROOT}.{part}"
    if part.endswith("."):
        return name.startswith(full)
    return name == full or name.startswith(full + ".")


def _files(covers: tuple[str, ...]) -> list[Path]:
    out = []
    for part in covers:
        target = PACKAGE / Path(*part.split("."))
        out += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return [p for p in out if p.exists()]


def violations(rule: Rule) -> list[str]:
    bad = []
    for path in _files(rule.covers):
        me = _module_name(path)
        for name in sorted(imports_of(path)):
            if not name.startswith(ROOT + ".") or any(_under(name, c) for c in rule.covers):
                continue  # outside libraries, and imports among the covered modules, are free
            if any(_under(name, part) for part in rule.never) or (
                rule.only is not None and not any(_under(name, part) for part in rule.only)
            ):
                bad.append(f"{me} imports {name}")
    return bad


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.why.split(":")[0].split(";")[0][:60])
def test_import_rule(rule: Rule) -> None:
    assert violations(rule) == [], rule.why


def test_click_builds_one_command_line() -> None:
    users = {_module_name(p) for p in PACKAGE.rglob("*.py") if any(n.split(".")[0] == "click" for n in imports_of(p))}
    assert users <= CLICK_USERS


def test_the_rules_cover_real_modules() -> None:
    """A rule about a module that does not exist guards nothing."""
    for rule in RULES:
        assert _files(rule.covers), rule.covers
