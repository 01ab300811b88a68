"""The expression language of `chainrule diff/explain/graph`: a small, safe parser into a shared DAG."""
from __future__ import annotations

import inspect
import keyword
import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, NamedTuple

__all__ = [
    "DEFAULT_FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Call",
    "Const",
    "Expression",
    "ExpressionError",
    "Var",
    "missing_variables",
    "parse",
    "parse_assignments",
]

MAX_LENGTH = 10_000
# Each level costs the parser at most three Python frames, which keeps it well below the recursion limit.
MAX_DEPTH = 200

DEFAULT_FUNCTIONS: Mapping[str, int] = MappingProxyType({
    "exp": 1, "log": 1, "ln": 1, "sin": 1, "cos": 1, "tanh": 1, "sqrt": 1, "abs": 1,
    "sigmoid": 1, "relu": 1, "softplus": 1, "maximum": 2, "minimum": 2,
})


class ExpressionError(ValueError):
    """Input the expression language refuses, pointing at the 1-based column where it goes wrong."""

    def __init__(self, reason: str, text: str, column: int, hint: str | None = None):
        self.reason, self.text, self.column = reason, text, column
        message = f"{reason} at column {column}" + (f"; {hint}" if hint else "")
        super().__init__(f"{message}\n{_pointer(text, column)}")


_WINDOW = 72


def _pointer(text: str, column: int) -> str:
    # Long input is cut to a window around the column so the caret stays on screen.
    start = max(0, min(column - 1 - _WINDOW // 2, len(text) - _WINDOW))
    left = "..." if start > 0 else ""
    right = "..." if start + _WINDOW < len(text) else ""
    # One character out per character in keeps the caret aligned under tabs and newlines.
    shown = "".join(c if c.isprintable() else " " for c in text[start:start + _WINDOW])
    return f"  {left}{shown}{right}\n  {' ' * (len(left) + column - 1 - start)}^"


# Nodes compare by identity: the parser hash-conses them, so equal structure means the same object.
@dataclass(frozen=True, eq=False, repr=False)
class Const:
    """A number written in the expression."""

    value: float

    def __repr__(self) -> str:
        return f"Const({self.value!r})"


@dataclass(frozen=True, eq=False, repr=False)
class Var:
    """A variable, given a value at evaluation time."""

    name: str

    def __repr__(self) -> str:
        return f"Var({self.name!r})"


@dataclass(frozen=True, eq=False, repr=False)
class Call:
    """An operation (add, subtract, multiply, divide, power, negative) or table function on args."""

    op: str
    args: tuple

    def __repr__(self) -> str:
        # Shallow on purpose: a recursive repr of a 5,000-deep chain would overflow the stack.
        return f"Call({self.op!r}, <{len(self.args)} args>)"


Node = Const | Var | Call


class Expression:
    """A parsed expression: its `root`, its `nodes` children first (each once), its `variables` in order."""

    __slots__ = ("text", "root", "nodes", "variables", "_columns")

    def __init__(self, text: str, root: Node, nodes: tuple, variables: tuple, columns: dict):
        self.text, self.root, self.nodes, self.variables = text, root, nodes, variables
        self._columns = columns  # node -> column of its first appearance, for error messages

    def __str__(self) -> str:
        return _format(self.root)

    def __repr__(self) -> str:
        return f"Expression({str(self)!r})"

    def evaluate(self, values: Mapping[str, object], functions: Mapping[str, Callable]) -> Any:
        """Compute the expression bottom-up, each node once, with `functions[op]` for every operation.

        >>> import operator
        >>> table = {"add": operator.add, "multiply": operator.mul}
        >>> parse("x*y + x").evaluate({"x": 2.0, "y": 3.0}, table)
        8.0
        """
        missing = missing_variables(self, values)
        if missing:
            absent = [n for n in self.nodes if isinstance(n, Var) and n.name in missing]
            first = min(absent, key=self._columns.get)
            names = ", ".join(map(repr, missing))
            noun = "variable" if len(missing) == 1 else "variables"
            raise ExpressionError(f"no value for {noun} {names}", self.text, self._columns[first])
        for node in self.nodes:
            if isinstance(node, Call) and node.op not in functions:
                raise ExpressionError(f"no implementation for {node.op!r}", self.text, self._columns[node])
        results: dict[Node, Any] = {}
        for node in self.nodes:
            if isinstance(node, Const):
                results[node] = node.value
            elif isinstance(node, Var):
                results[node] = values[node.name]
            else:
                results[node] = functions[node.op](*[results[arg] for arg in node.args])
        return results[self.root]

    def to_function(self, functions: Mapping[str, Callable]) -> Callable:
        """A Python function of the variables, in order of appearance, that evaluates the expression.

        >>> import operator
        >>> f = parse("x*y + x").to_function({"add": operator.add, "multiply": operator.mul})
        >>> f(2.0, 3.0), f.__name__
        (8.0, 'x_times_y_plus_x')
        """
        signature = inspect.Signature(
            [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in self.variables]
        )

        def function(*args, **kwargs):
            return self.evaluate(signature.bind(*args, **kwargs).arguments, functions)

        function.__signature__ = signature
        function.__name__ = function.__qualname__ = _identifier(str(self))
        function.__doc__ = f"Evaluate {self}."
        return function


def missing_variables(expression: Expression, values: Mapping[str, object]) -> list[str]:
    """The expression's variables that `values` lacks, sorted.

    >>> missing_variables(parse("x + y*z"), {"y": 1.0})
    ['x', 'z']
    """
    return sorted(name for name in expression.variables if name not in values)


_WORDS = {"**": "_pow_", "+": "_plus_", "-": "_minus_", "*": "_times_", "/": "_over_"}


def _identifier(text: str) -> str:
    for symbol, word in _WORDS.items():
        text = text.replace(symbol, word)
    name = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")[:60].rstrip("_")
    return name if name and not name[0].isdigit() else f"f_{name}"


# ----------------------------------------------------------------------------------------------
# Printing: parentheses only where the grammar needs them, so parse(str(e)) rebuilds e exactly.

_PRECEDENCE = {"add": 1, "subtract": 1, "multiply": 2, "divide": 2, "negative": 3, "power": 4}
_ATOM = 5
_SYMBOLS = {"add": " + ", "subtract": " - ", "multiply": "*", "divide": "/", "power": "**"}
# The least precedence each operand may have without parentheses: (left, right). The right side of
# "-" and "/" needs more than the left since those chains are left-associative; "**" is the reverse.
_OPERANDS = {"add": (1, 2), "subtract": (1, 2), "multiply": (2, 3), "divide": (2, 3), "power": (_ATOM, 3)}


def _precedence(node: Node) -> int:
    return _PRECEDENCE.get(node.op, _ATOM) if isinstance(node, Call) else _ATOM


def _operand(node: Node, least: int) -> list:
    return [node] if _precedence(node) >= least else ["(", node, ")"]


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


def _format(root: Node) -> str:
    # An explicit stack instead of recursion: a 10,000-character input can be 5,000 levels deep.
    parts: list[str] = []
    stack: list = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, Const):
            parts.append(_format_number(item.value))
        elif isinstance(item, Var):
            parts.append(item.name)
        elif item.op in _SYMBOLS:
            left, right = _OPERANDS[item.op]
            pieces = [*_operand(item.args[0], left), _SYMBOLS[item.op], *_operand(item.args[1], right)]
            stack.extend(reversed(pieces))
        elif item.op == "negative":
            stack.extend(reversed(["-", *_operand(item.args[0], _PRECEDENCE["power"])]))
        else:
            pieces = [item.op, "("]
            for index, arg in enumerate(item.args):
                pieces += [", ", arg] if index else [arg]
            stack.extend(reversed([*pieces, ")"]))
    return "".join(parts)


# ----------------------------------------------------------------------------------------------
# Tokens and parsing.

class _Token(NamedTuple):
    kind: str  # "number", "name", "op" or "end"
    text: str
    column: int


_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | _DIGITS
_WHITESPACE = frozenset(" \t\n\r\f\v")
_OPERATORS = ("**", "+", "-", "*", "/", "^", "(", ")", ",")  # "**" before "*": longest match first
# Checked before the operators so that "//" is refused rather than read as two divisions.
_REFUSED = {
    "//": "'//' (floor division) is not allowed; use '/'",
    "==": "comparisons are not allowed",
    "!=": "comparisons are not allowed",
    "<": "comparisons are not allowed",
    ">": "comparisons are not allowed",
    "=": "'=' is not allowed in an expression",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "[": "brackets are not allowed; use parentheses",
    "]": "brackets are not allowed; use parentheses",
    "{": "braces are not allowed; use parentheses",
    "}": "braces are not allowed; use parentheses",
    "@": "'@' (matrix multiplication) is not allowed",
    "%": "'%' is not allowed",
}
# Binding powers (left, right) for the Pratt loop; right < left makes "**" right-associative.
_BINARY = {
    "+": (10, 11, "add"), "-": (10, 11, "subtract"),
    "*": (20, 21, "multiply"), "/": (20, 21, "divide"),
    "**": (40, 39, "power"), "^": (40, 39, "power"),
}
# Between "*" and "**": -x*y is (-x)*y, while -x**2 is -(x**2).
_UNARY = 30
_COMMA = "',' is only allowed between function arguments"
_NOTHING: Mapping[str, str] = MappingProxyType({})


def _name_problem(name: str) -> str | None:
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword and is not allowed"
    if name.startswith("__"):
        return f"names starting with '__' are not allowed ({name!r})"
    return None


def _skip_digits(text: str, index: int) -> int:
    while index < len(text) and text[index] in _DIGITS:
        index += 1
    return index


def _number_end(text: str, start: int) -> int:
    """Index just past the number at `start` (2, 2.5, .5, 1e-3, 1.5E+2), or `start` if there is none."""
    end = _skip_digits(text, start)
    if end < len(text) and text[end] == ".":
        end = _skip_digits(text, end + 1)
    if text[start:end] in ("", "."):
        return start
    if end < len(text) and text[end] in "eE":
        exponent = end + 1
        if exponent < len(text) and text[exponent] in "+-":
            exponent += 1
        digits_end = _skip_digits(text, exponent)
        if digits_end > exponent:
            end = digits_end
    return end


class _Parser:
    def __init__(self, text: str, functions: Mapping[str, int]):
        self.text, self.functions = text, functions
        self.index = 0  # where the tokenizer reads next
        self.depth = 0
        self.token = _Token("end", "", 1)
        self.interned: dict[tuple, Node] = {}
        self.nodes: list[Node] = []  # in creation order, which is children first
        self.columns: dict[Node, int] = {}
        self.variables: list[str] = []

    def error(self, reason: str, column: int, hint: str | None = None) -> ExpressionError:
        return ExpressionError(reason, self.text, column, hint)

    # -- tokenizer: lazy, so the leftmost problem in the text is the one reported ------------------

    def advance(self) -> _Token:
        token, self.token = self.token, self.scan()
        return token

    def scan(self) -> _Token:
        text, i = self.text, self.index
        while i < len(text) and text[i] in _WHITESPACE:
            i += 1
        if i == len(text):
            self.index = i
            return _Token("end", "", i + 1)
        end = _number_end(text, i)
        if end > i:
            if end < len(text) and (text[end] in _NAME_CHARS or text[end] == "."):
                tail = end
                while tail < len(text) and (text[tail] in _NAME_CHARS or text[tail] == "."):
                    tail += 1
                raise self.error(f"malformed number {text[i:tail]!r}", end + 1)
            if not math.isfinite(float(text[i:end])):
                raise self.error(f"number {text[i:end]!r} is too large", i + 1)
            return self.take("number", i, end)
        if text[i] in _NAME_START:
            end = i
            while end < len(text) and text[end] in _NAME_CHARS:
                end += 1
            problem = _name_problem(text[i:end])
            if problem:
                raise self.error(problem, i + 1)
            return self.take("name", i, end)
        for symbol, reason in _REFUSED.items():
            if text.startswith(symbol, i):
                raise self.error(reason, i + 1)
        for symbol in _OPERATORS:
            if text.startswith(symbol, i):
                return self.take("op", i, i + len(symbol))
        if text[i] == "." and i + 1 < len(text) and text[i + 1] in _NAME_START:
            raise self.error("attribute access is not allowed", i + 1)
        hint = "names must be ASCII letters, digits and '_'" if text[i].isalpha() else None
        raise self.error(f"unexpected character {text[i]!r}", i + 1, hint)

    def take(self, kind: str, start: int, end: int) -> _Token:
        self.index = end
        return _Token(kind, self.text[start:end], start + 1)

    # -- nodes: hash-consed, so structurally equal subexpressions are one object -------------------

    def node(self, key: tuple, make: Callable[[], Node], column: int) -> Node:
        node = self.interned.get(key)
        if node is None:
            node = self.interned[key] = make()
            self.nodes.append(node)
            self.columns[node] = column
        return node

    def call(self, op: str, args: tuple, column: int) -> Node:
        return self.node((Call, op, args), lambda: Call(op, args), column)

    # -- grammar --------------------------------------------------------------------------------

    def parse(self) -> Expression:
        self.advance()
        if self.token.kind == "end":
            raise self.error("empty expression", 1)
        root = self.expression(0)
        if self.token.kind != "end":
            raise self.unexpected("an operator", {")": "unmatched ')'", ",": _COMMA})
        return Expression(self.text, root, tuple(self.nodes), tuple(self.variables), self.columns)

    def unexpected(self, expected: str, special: Mapping[str, str] = _NOTHING) -> ExpressionError:
        token = self.token
        if token.kind == "op" and token.text in special:
            return self.error(special[token.text], token.column)
        found = "end of expression" if token.kind == "end" else repr(token.text)
        return self.error(f"unexpected {found}; expected {expected}", token.column)

    def expression(self, min_power: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            reason = f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
            raise self.error(reason, self.token.column)
        left = self.prefix()
        while self.token.kind == "op" and self.token.text in _BINARY:
            left_power, right_power, op = _BINARY[self.token.text]
            if left_power < min_power:
                break
            column = self.advance().column
            left = self.call(op, (left, self.expression(right_power)), column)
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.advance()
            value = float(token.text)
            return self.node((Const, value), lambda: Const(value), token.column)
        if token.kind == "name":
            return self.name()
        if token.text == "(":
            self.advance()
            inner = self.expression(0)
            self.close(token, "an operator or ')'", {",": _COMMA})
            return inner
        if token.text in ("-", "+"):
            self.advance()
            operand = self.expression(_UNARY)
            # Unary plus changes nothing, so it leaves no node behind.
            return operand if token.text == "+" else self.call("negative", (operand,), token.column)
        raise self.unexpected("a number, a variable, a function call or '('")

    def close(self, opening: _Token, expected: str, special: Mapping[str, str] = _NOTHING) -> None:
        if self.token.kind == "end":
            raise self.error("unclosed '('", opening.column)
        if self.token.text != ")":
            raise self.unexpected(expected, special)
        self.advance()

    def name(self) -> Node:
        token = self.advance()
        name = token.text
        if name not in self.functions:
            if self.token.text == "(":
                known = ", ".join(sorted(self.functions))
                raise self.error(f"unknown function {name!r}", token.column, f"known functions: {known}")
            if name not in self.variables:
                self.variables.append(name)
            return self.node((Var, name), lambda: Var(name), token.column)
        if self.token.text != "(":
            raise self.error(f"function {name!r} must be called, as in {name}(...)", token.column)
        opening = self.advance()
        args: list[Node] = []
        if self.token.text == ")":
            self.advance()
        else:
            while True:
                args.append(self.expression(0))
                if self.token.text != ",":
                    break
                self.advance()
            self.close(opening, "an operator, ',' or ')'")
        arity = self.functions[name]
        if len(args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.error(f"{name}() takes {arity} {plural}, got {len(args)}", token.column)
        return self.call(name, tuple(args), token.column)


def parse(text: str, functions: Mapping[str, int] = DEFAULT_FUNCTIONS) -> Expression:
    """Parse `text` into an Expression; `functions` maps each callable name to its number of arguments.

    >>> e = parse("exp(x*z) + x*z/ln(x)")
    >>> e.variables, str(e)
    (('x', 'z'), 'exp(x*z) + x*z/ln(x)')
    >>> len(e.nodes)  # x, z, x*z, exp(x*z), ln(x), x*z/ln(x), +
    7
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the expression as a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(text)} characters, limit {MAX_LENGTH})", text, MAX_LENGTH + 1
        )
    parser = _Parser(text, functions)
    try:
        return parser.parse()
    except RecursionError:
        # Only reachable when the caller was already deep in the stack; MAX_DEPTH guards the rest.
        raise ExpressionError("expression is nested too deeply", text, parser.token.column) from None


def parse_assignments(items: Iterable[str]) -> dict[str, float]:
    """Read `--at` values such as ["x=2", "z=3"] or ["x=2,z=3"] into {name: float}.

    >>> parse_assignments(["x=2", "z=3, w=-1.5"])
    {'x': 2.0, 'z': 3.0, 'w': -1.5}
    """
    if isinstance(items, str):
        items = [items]
    values: dict[str, float] = {}
    for item in items:
        offset = 0
        for piece in item.split(","):
            _assign(values, item, piece, offset + len(piece) - len(piece.lstrip()) + 1)
            offset += len(piece) + 1
    return values


def _assign(values: dict[str, float], item: str, piece: str, column: int) -> None:
    piece = piece.strip()
    if not piece:
        raise ExpressionError("empty assignment; write name=value", item, column)
    name, equals, value = piece.partition("=")
    if not equals:
        raise ExpressionError(f"missing '=' in {piece!r}; write name=value", item, column + len(piece))
    value_column = column + len(name) + 1
    name = name.strip()
    if not name:
        raise ExpressionError("missing variable name before '='", item, column)
    if name[0] not in _NAME_START or not set(name) <= _NAME_CHARS or _name_problem(name):
        raise ExpressionError(f"{name!r} is not a valid variable name", item, column)
    value_column += len(value) - len(value.lstrip())
    value = value.strip()
    if not value:
        raise ExpressionError(f"missing value for {name!r}", item, value_column)
    try:
        number = float(value)
    except ValueError:
        raise ExpressionError(f"value of {name!r} is not a number: {value!r}", item, value_column) from None
    if not math.isfinite(number):
        raise ExpressionError(f"value of {name!r} must be finite, got {value!r}", item, value_column)
    if name in values:
        raise ExpressionError(f"variable {name!r} is given twice", item, column)
    values[name] = number
