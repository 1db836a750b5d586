"""Nothing read from storage, files or the network can run code: the package never unpickles
(pickle, marshal, shelve, dill, jsonpickle, pandas/numpy pickles), never ``eval``s or
``exec``s, and loads YAML only with a safe loader. Checked on the source (AST + text), so a
new module is covered the day it is added."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "batchfed_lab"

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle", "joblib"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_ATTRS = {"read_pickle", "to_pickle", "unsafe_load", "full_load", "UnsafeLoader", "FullLoader"}
YAML_LOAD = re.compile(r"yaml\.(load|load_all)\(")


def sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40, files
    return files


def test_no_unpickling_module_is_imported() -> None:
    found = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: import {n}" for n in names if n in UNSAFE_MODULES]
    assert not found, found


def test_no_eval_exec_or_unsafe_loader() -> None:
    found = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in UNSAFE_CALLS:
                found.append(f"{where}: {node.func.id}()")
            if isinstance(node, ast.Attribute) and node.attr in UNSAFE_ATTRS:
                found.append(f"{where}: .{node.attr}")
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                found.append(f"{where}: allow_pickle=")
    assert not found, found


def test_yaml_is_loaded_only_with_the_safe_loader() -> None:
    found = []
    for path in sources():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if YAML_LOAD.search(line) and "Loader=_Loader" not in line:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}")
    assert not found, found
    import yaml

    from batchfed_lab.config import loading

    # libyaml's parser or PyYAML's, the constructor is the safe one: no Full/Unsafe tags
    for loader in (loading._Loader, loading._SafeLoader):
        assert issubclass(loader, yaml.constructor.SafeConstructor)
        assert not issubclass(loader, yaml.constructor.FullConstructor)


def test_the_yaml_loader_refuses_python_tags() -> None:
    import pytest

    from batchfed_lab.config import load_jobs
    from batchfed_lab.errors import ConfigError

    for tag in ("!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "!!python/module:os"):
        with pytest.raises(ConfigError, match="could not determine a constructor"):
            load_jobs(f"job_specifications: {tag}\n")


def test_stored_payloads_are_json_text() -> None:
    """Both stores write payloads with json.dumps and read them with json.loads."""
    rules = (PACKAGE / "store" / "rules.py").read_text()
    assert "json.dumps(value" in rules and "json.loads(text)" in rules
