"""PyYAML's safe loader, refusing duplicate keys, with a lean constructor for large files.

PyYAML's constructor goes through several Python calls and a generator for every value; on
a config file of a few MiB that cost more than parsing itself. :class:`_LeanConstructor`
builds plain mappings, lists and scalars in one loop over the node tree and hands anything
else (merge keys, complex keys, tags other than the core scalars) to PyYAML's own code, so
the values — and the errors — are those of ``yaml.SafeLoader``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
# scalar tags built by calling SafeConstructor's own function directly
_CORE_SCALARS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float")}


def _duplicate(key: Any, key_node: Node, first_line: int) -> ConstructorError:
    return ConstructorError(None, None, f"duplicate key {key!r} (first given on line {first_line})", key_node.start_mark)


class _NoDuplicateKeys(yaml.constructor.SafeConstructor):
    """A safe loader's mixin that refuses a key given twice in one mapping (PyYAML would
    silently keep the last one, e.g. drop a whole ``tasks:`` list). Keys brought in by a
    ``<<`` merge may still be overridden, as YAML intends."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: SafeLoader reports it itself
                    continue
                if first is not None:
                    raise _duplicate(key, key_node, first)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _LeanConstructor(_NoDuplicateKeys):
    """Builds the common nodes in one loop (see the module's docstring)."""

    def construct_document(self, node: Node) -> Any:
        try:
            data = self._build(node)
            # values handed to PyYAML may have left work for its state generators
            while self.state_generators:
                generators, self.state_generators = self.state_generators, []
                for generator in generators:
                    for _ in generator:
                        pass
            return data
        finally:
            self.constructed_objects = {}
            self.recursive_objects = {}
            self.deep_construct = False

    def _build(self, root: Node) -> Any:
        memo: dict[Node, Any] = self.constructed_objects
        todo: list[tuple[Node, Any]] = []  # containers made but not yet filled
        scalars: dict[str | None, Callable[..., Any]] = self.yaml_constructors

        def value_of(node: Node) -> Any:
            if node in memo:  # an alias of a value made before
                return memo[node]
            tag = node.tag
            if isinstance(node, ScalarNode):
                if tag == _STR:
                    return node.value
                if tag in _CORE_SCALARS:
                    return scalars[tag](self, node)
            elif tag == _MAP and isinstance(node, MappingNode) and _plain_keys(node):
                made: Any = {}
                memo[node] = made
                todo.append((node, made))
                return made
            elif tag == _SEQ and isinstance(node, SequenceNode):
                made = []
                memo[node] = made
                todo.append((node, made))
                return made
            return self.construct_object(node, deep=True)  # anything else: PyYAML's own way

        data = value_of(root)
        while todo:
            node, made = todo.pop()
            if isinstance(made, list):
                made.extend(value_of(child) for child in node.value)
                continue
            for key_node, value_node in node.value:
                key = value_of(key_node)
                if key in made:
                    raise _duplicate(key, key_node, _first_line(self, node, key))
                made[key] = value_of(value_node)
        return data


def _plain_keys(node: MappingNode) -> bool:
    """Every key is a plain string, number, boolean or null — no merge, no complex key."""
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or (key_node.tag != _STR and key_node.tag not in _CORE_SCALARS):
            return False
    return True


def _first_line(constructor: yaml.constructor.SafeConstructor, node: Node, key: Any) -> int:
    for key_node, _ in node.value:
        if constructor.construct_object(key_node) == key:
            return int(key_node.start_mark.line) + 1
    return 0


class SafeLoader(_LeanConstructor, yaml.SafeLoader):
    pass


# libyaml's parser when PyYAML was built with it: several times faster on a large job file
# (a 200-job submit spent most of its time in the pure-Python scanner); same safe constructor
Loader: type = SafeLoader
if getattr(yaml, "__with_libyaml__", False):

    class CSafeLoader(_LeanConstructor, yaml.CSafeLoader):
        pass

    Loader = CSafeLoader
