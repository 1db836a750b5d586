"""The autoscale formula subset localbatch understands.

Grammar (anything outside it is refused with HTTP 400 ``AutoScalingFormulaSyntaxError`` when the
pool is created, autoscale is enabled, or a formula is evaluated)::

    formula    := statement { ";" statement } [ ";" ]
    statement  := "$" NAME "=" expression
    expression := or [ "?" expression ":" expression ]
    or         := and { "||" and }
    and        := compare { "&&" compare }
    compare    := sum [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) sum ]
    sum        := product { ( "+" | "-" ) product }
    product    := unary { ( "*" | "/" ) unary }
    unary      := [ "-" | "!" ] primary
    primary    := NUMBER | "(" expression ")" | FUNC "(" expression { "," expression } ")"
                | SAMPLE ".GetSample(1)" | SCALAR | "$" USERNAME

    FUNC    := min | max | ceil | floor            (min/max take one or more arguments)
    SAMPLE  := $ActiveTasks | $RunningTasks | $PendingTasks      (current value; only GetSample(1))
    SCALAR  := $CurrentDedicatedNodes | $CurrentLowPriorityNodes | $TaskSlotsPerNode
             | $PreemptedNodeCount
    targets := $TargetDedicatedNodes | $TargetLowPriorityNodes   (written, may be read after)
    $NodeDeallocationOption = requeue | terminate | taskcompletion | retaineddata ;

``$PendingTasks`` = active + running tasks of the jobs on the pool, as on Azure. Comparisons and
``&&``/``||``/``!`` yield 1 or 0. A user variable (``$myVar``) must be assigned before use. Targets
are rounded down and clamped at 0; a target the formula does not set keeps its current value.
Division by zero is an evaluation error (``AutoScaleRun.error``), not a syntax error.
The result string lists the targets, the deallocation option, then user variables, e.g.
``$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

TARGETS = ("$TargetDedicatedNodes", "$TargetLowPriorityNodes")
ALIASES = {"$TargetDedicated": "$TargetDedicatedNodes"}  # the older name, which Batch still takes (its own examples use it)
DEALLOCATION = "$NodeDeallocationOption"
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
SAMPLES = ("$ActiveTasks", "$RunningTasks", "$PendingTasks")
SCALARS = ("$CurrentDedicatedNodes", "$CurrentLowPriorityNodes", "$TaskSlotsPerNode", "$PreemptedNodeCount")
FUNCS = ("min", "max", "ceil", "floor")
MAX_NESTING = 64  # expressions one inside the other: deeper is refused, not recursed into
MAX_TREE_DEPTH = 400  # operations evaluated one inside the other (Python's recursion limit is 1000)
MAX_FORMULA_CHARS = 8192  # Azure's AutoScaleFormulaTooLong limit is of this order


class FormulaError(ValueError):
    """A formula outside the subset, or one that cannot be evaluated."""


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<var>\$[A-Za-z_][A-Za-z0-9_]*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/()<>!?:;,=.]))"
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise FormulaError(f"unexpected character {text[pos:].lstrip()[:1]!r} at offset {pos}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        out.append((kind, ALIASES.get(value, value) if kind == "var" else value, m.start(kind)))
        pos = m.end()
    out.append(("end", "", len(text)))
    return out


@dataclass(frozen=True)
class Formula:
    """A parsed formula: ``statements`` are ``(variable, ast)`` pairs in order."""

    text: str
    statements: tuple

    def evaluate(self, context: dict[str, float], current: dict[str, float]) -> Result:
        """Run the formula. ``context`` holds samples and scalars; ``current`` the pool's targets."""
        env: dict[str, object] = {}
        for var, node in self.statements:
            env[var] = _eval(node, env, context)
        targets = {}
        for t in TARGETS:
            value = env.get(t, current.get(t, 0.0))
            targets[t] = max(0, math.floor(_num(value)))
        option = str(env.get(DEALLOCATION, "requeue"))
        parts = [f"{t}={targets[t]}" for t in TARGETS] + [f"{DEALLOCATION}={option}"]
        for var, value in env.items():
            if var not in TARGETS and var != DEALLOCATION:
                parts.append(f"{var}={_fmt(value)}")
        return Result(targets[TARGETS[0]], targets[TARGETS[1]], option, ";".join(parts))


@dataclass(frozen=True)
class Result:
    dedicated: int
    low_priority: int
    deallocation: str
    text: str


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse(text: str) -> Formula:
    """Parse ``text`` or raise FormulaError with a one-line reason."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    if len(text) > MAX_FORMULA_CHARS:
        raise FormulaError(f"the formula is longer than {MAX_FORMULA_CHARS} characters")
    return _Parser(_tokenize(text)).formula(text)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]):
        self.toks = tokens
        self.i = 0
        self.assigned: set[str] = set()
        self.depth = 0

    # -- helpers ----------------------------------------------------------------------------
    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        _kind, got, pos = self.take()
        if got != value:
            raise FormulaError(f"expected {value!r} at offset {pos}, found {got or 'end of formula'!r}")

    def at(self, *values: str) -> bool:
        return self.peek()[1] in values and self.peek()[0] == "op"

    # -- grammar ----------------------------------------------------------------------------
    def formula(self, text: str) -> Formula:
        statements = []
        while self.peek()[0] != "end":
            if self.at(";"):
                self.take()
                continue
            statements.append(self.statement())
            if self.peek()[0] != "end":
                self.expect(";")
        if not statements:
            raise FormulaError("the formula has no statements")
        for _var, node in statements:
            if _tree_depth(node) > MAX_TREE_DEPTH:  # a long a+b+c+... chain: evaluating it recurses as deep
                raise FormulaError(f"an expression has more than {MAX_TREE_DEPTH} operations one after the other")
        return Formula(text, tuple(statements))

    def statement(self) -> tuple:
        kind, var, pos = self.take()
        if kind != "var":
            raise FormulaError(f"a statement must start with a $variable (offset {pos}, found {var!r})")
        if var in SAMPLES or var in SCALARS:
            raise FormulaError(f"{var} is read-only")
        self.expect("=")
        if var == DEALLOCATION:
            kind, word, pos = self.take()
            if kind != "name" or word.lower() not in DEALLOCATION_OPTIONS:
                raise FormulaError(f"{DEALLOCATION} must be one of {', '.join(DEALLOCATION_OPTIONS)} (offset {pos})")
            node: tuple = ("const", word.lower())
        else:
            node = self.expression()
        self.assigned.add(var)
        return (var, node)

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FormulaError(f"the formula is nested more than {MAX_NESTING} deep (offset {self.peek()[2]})")

    def expression(self) -> tuple:
        self._deeper()
        cond = self.binary(0)
        if self.at("?"):
            self.take()
            yes = self.expression()
            self.expect(":")
            no = self.expression()
            cond = ("if", cond, yes, no)
        self.depth -= 1
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">="), ("+", "-"), ("*", "/"))

    def binary(self, level: int) -> tuple:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        ops = self._LEVELS[level]
        while self.at(*ops):
            op = self.take()[1]
            left = ("bin", op, left, self.binary(level + 1))
            if level == 2:  # comparisons do not chain (a < b < c is refused, as in C# formulas)
                if self.at(*ops):
                    raise FormulaError(f"comparisons cannot be chained (offset {self.peek()[2]})")
                break
        return left

    def unary(self) -> tuple:
        if self.at("-", "!"):
            op = self.take()[1]
            self._deeper()
            node = ("neg" if op == "-" else "not", self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> tuple:
        kind, value, pos = self.take()
        if kind == "num":
            return ("const", float(value))
        if kind == "op" and value == "(":
            node = self.expression()
            self.expect(")")
            return node
        if kind == "name":
            if value not in FUNCS:
                raise FormulaError(f"unknown function or word {value!r} at offset {pos} (supported: {', '.join(FUNCS)})")
            self.expect("(")
            args = [self.expression()]
            while self.at(","):
                self.take()
                args.append(self.expression())
            self.expect(")")
            if value in ("ceil", "floor") and len(args) != 1:
                raise FormulaError(f"{value}() takes one argument (offset {pos})")
            return ("call", value, tuple(args))
        if kind == "var":
            if value in SAMPLES:
                self.expect(".")
                k, name, p = self.take()
                if name != "GetSample":
                    raise FormulaError(f"only {value}.GetSample(1) is supported (offset {p})")
                self.expect("(")
                k, n, p = self.take()
                if k != "num" or float(n) != 1.0:
                    raise FormulaError(f"only GetSample(1) is supported: localbatch keeps no sample history (offset {p})")
                self.expect(")")
                return ("ctx", value)
            if value in SCALARS:
                return ("ctx", value)
            if value in self.assigned:
                return ("var", value)
            raise FormulaError(f"unknown variable {value} at offset {pos} (assign it before use)")
        raise FormulaError(f"unexpected {value or 'end of formula'!r} at offset {pos}")


def _tree_depth(node: tuple) -> int:
    """How deep evaluating ``node`` recurses (counted without recursing)."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in item[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                stack.append((child, depth + 1))
            elif isinstance(child, tuple):  # a call's arguments
                stack.extend((arg, depth + 1) for arg in child)
    return deepest


def _num(value: object) -> float:
    if not isinstance(value, (int, float)):  # bools are ints, as the formula language has them
        raise FormulaError(f"{value!r} is not a number")
    return float(value)


def _eval(node: tuple, env: dict, ctx: dict) -> object:
    op = node[0]
    if op == "const":
        return node[1]
    if op == "ctx":
        return float(ctx.get(node[1], 0.0))
    if op == "var":
        return env[node[1]]
    if op == "neg":
        return -_num(_eval(node[1], env, ctx))
    if op == "not":
        return 0.0 if _num(_eval(node[1], env, ctx)) else 1.0
    if op == "if":
        return _eval(node[2], env, ctx) if _num(_eval(node[1], env, ctx)) else _eval(node[3], env, ctx)
    if op == "call":
        args = [_num(_eval(a, env, ctx)) for a in node[2]]
        if node[1] == "min":
            return min(args)
        if node[1] == "max":
            return max(args)
        return float(math.ceil(args[0]) if node[1] == "ceil" else math.floor(args[0]))
    # binary operators
    sym = node[1]
    a = _num(_eval(node[2], env, ctx))
    if sym == "&&":
        return 1.0 if a and _num(_eval(node[3], env, ctx)) else 0.0
    if sym == "||":
        return 1.0 if a or _num(_eval(node[3], env, ctx)) else 0.0
    b = _num(_eval(node[3], env, ctx))
    if sym == "+":
        return a + b
    if sym == "-":
        return a - b
    if sym == "*":
        return a * b
    if sym == "/":
        if b == 0:
            raise FormulaError("division by zero")
        return a / b
    return 1.0 if {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[sym] else 0.0
