"""The safe formula language of mm's `expr` initialiser: a tokenizer and a Pratt parser into a
small tree of our own, evaluated with numpy over a whole h x w grid. User text never reaches
eval, exec, compile or Python's `ast`.

The language is the arithmetic subset of JavaScript that mm's formulas use, with these rules:

- numbers (`3`, `.5`, `1e-3`), variables `i j h w`, constants `pi e`; any function or constant
  may carry a `Math.` prefix (`Math.trunc`, `Math.PI`, `Math.E`, `Math.SQRT2`, ...);
- operators, loosest first: `c ? a : b` (right-assoc); `||` / `or`; `&&` / `and`;
  `== != === !==`; `< <= > >=`; `+ -`; `* / %`; unary `- + !`; `**` (right-assoc);
- as in Python, `**` binds tighter than a unary minus on its left: `-2**2` is -4 (JavaScript
  rejects that text), and `2**-1` is 0.5;
- `%` is JavaScript's remainder (sign follows the dividend, numpy's fmod); `/` is true division;
- comparisons, `!`, `&&`, `||` give 1.0 or 0.0; zero and NaN count as false (as in JavaScript);
  both sides of `&&`, `||` and `?:` are evaluated (there are no side effects to skip);
- `round` is JavaScript's (halves go up: round(-2.5) is -2), not numpy's banker's rounding;
- division by zero and friends give inf/nan as numpy does; evaluation never raises.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..errors import MMError

MAX_LENGTH = 2000  # characters of formula text
MAX_NESTING = 64  # parenthesis / call / unary / power nesting while parsing
MAX_TREE_DEPTH = 200  # depth of the finished tree (keeps evaluation recursion bounded)

VARIABLES = ("i", "j", "h", "w")
CONSTANTS = {"pi": math.pi, "e": math.e}
# Only reachable with the `Math.` prefix, spelt as JavaScript spells them.
MATH_CONSTANTS = {
    "PI": math.pi,
    "E": math.e,
    "LN2": math.log(2.0),
    "LN10": math.log(10.0),
    "LOG2E": 1.0 / math.log(2.0),
    "LOG10E": 1.0 / math.log(10.0),
    "SQRT2": math.sqrt(2.0),
    "SQRT1_2": math.sqrt(0.5),
}


def _truth(x):
    """JavaScript truthiness, vectorised: zero and NaN are false."""
    x = np.asarray(x, dtype=np.float64)
    return (x != 0) & ~np.isnan(x)


def _fold(ufunc):
    def apply(*args):
        out = args[0]
        for arg in args[1:]:
            out = ufunc(out, arg)
        return out

    return apply


def _sign(x):
    return np.sign(np.asarray(x, dtype=np.float64))


def _js_round(x):
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _hypot(*args):
    if len(args) == 1:
        return np.abs(args[0])
    return _fold(np.hypot)(*args)


# name -> (fewest arguments, most arguments or None for any number, implementation)
FUNCTIONS = {
    "trunc": (1, 1, np.trunc),
    "floor": (1, 1, np.floor),
    "ceil": (1, 1, np.ceil),
    "round": (1, 1, _js_round),
    "abs": (1, 1, np.abs),
    "sign": (1, 1, _sign),
    "sqrt": (1, 1, np.sqrt),
    "cbrt": (1, 1, np.cbrt),
    "exp": (1, 1, np.exp),
    "expm1": (1, 1, np.expm1),
    "log": (1, 1, np.log),
    "log1p": (1, 1, np.log1p),
    "log2": (1, 1, np.log2),
    "log10": (1, 1, np.log10),
    "sin": (1, 1, np.sin),
    "cos": (1, 1, np.cos),
    "tan": (1, 1, np.tan),
    "asin": (1, 1, np.arcsin),
    "acos": (1, 1, np.arccos),
    "atan": (1, 1, np.arctan),
    "atan2": (2, 2, np.arctan2),
    "sinh": (1, 1, np.sinh),
    "cosh": (1, 1, np.cosh),
    "tanh": (1, 1, np.tanh),
    "asinh": (1, 1, np.arcsinh),
    "acosh": (1, 1, np.arccosh),
    "atanh": (1, 1, np.arctanh),
    "min": (2, None, _fold(np.minimum)),
    "max": (2, None, _fold(np.maximum)),
    "pow": (2, 2, np.power),
    "hypot": (1, None, _hypot),
    "clamp": (3, 3, lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)),
    "where": (3, 3, lambda c, a, b: np.where(_truth(c), a, b)),
}

_COMPARE = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _as_float(x):
    return np.asarray(x).astype(np.float64)


_BINARY_IMPL = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "%": np.fmod,
    "**": np.power,
    "&&": lambda a, b: _as_float(_truth(a) & _truth(b)),
    "||": lambda a, b: _as_float(_truth(a) | _truth(b)),
    **{op: (lambda f: lambda a, b: _as_float(f(a, b)))(f) for op, f in _COMPARE.items()},
}

# binary operator -> (binding power, right-associative)
_BINARY = {
    "||": (2, False),
    "&&": (3, False),
    "==": (4, False),
    "!=": (4, False),
    "<": (5, False),
    "<=": (5, False),
    ">": (5, False),
    ">=": (5, False),
    "+": (6, False),
    "-": (6, False),
    "*": (7, False),
    "/": (7, False),
    "%": (7, False),
    "**": (9, True),
}
_TERNARY_BP = 1
_UNARY_BP = 8

# Longest first so that `**` wins over `*`, `===` over `==`.
_OPERATORS = sorted(
    ["===", "!==", "**", "<=", ">=", "==", "!=", "&&", "||",
     "+", "-", "*", "/", "%", "<", ">", "!", "?", ":", "(", ")", ","],
    key=len,
    reverse=True,
)
_OP_ALIASES = {"===": "==", "!==": "!=", "and": "&&", "or": "||"}

_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_NAME = re.compile(r"(?:Math\.)?[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_SPACE = " \t\r\n"


# ---------------------------------------------------------------------------------------------
# Tree


class Node:
    __slots__ = ("depth",)

    def compute(self, env):  # pragma: no cover - every node type overrides it
        raise NotImplementedError


class Num(Node):
    __slots__ = ("value",)

    def __init__(self, value: float):
        self.value = float(value)
        self.depth = 1

    def compute(self, env):
        return self.value

    def __str__(self):
        if math.isinf(self.value):
            return "(1e999)"
        return repr(self.value)


class Var(Node):
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name
        self.depth = 1

    def compute(self, env):
        return env[self.name]

    def __str__(self):
        return self.name


class Unary(Node):
    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: Node):
        self.op, self.operand = op, operand
        self.depth = operand.depth + 1

    def compute(self, env):
        x = self.operand.compute(env)
        if self.op == "-":
            return np.negative(x)
        if self.op == "!":
            return _as_float(~_truth(x))
        return np.positive(x)

    def __str__(self):
        return f"({self.op}{self.operand})"


class Binary(Node):
    """A chain of left-associative operators of one precedence (`a - b + c`), or a single
    right-associative `**`. Chains keep long sums shallow, so evaluation never recurses deeply."""

    __slots__ = ("first", "rest")

    def __init__(self, first: Node, rest: list):
        self.first, self.rest = first, rest
        self.depth = max([first.depth] + [n.depth for _, n in rest]) + 1

    def append(self, op: str, node: Node):
        self.rest.append((op, node))
        self.depth = max(self.depth, node.depth + 1)

    def compute(self, env):
        out = self.first.compute(env)
        for op, node in self.rest:
            out = _BINARY_IMPL[op](out, node.compute(env))
        return out

    def __str__(self):
        return "(" + str(self.first) + "".join(f" {op} {n}" for op, n in self.rest) + ")"


class Ternary(Node):
    __slots__ = ("cond", "then", "other")

    def __init__(self, cond: Node, then: Node, other: Node):
        self.cond, self.then, self.other = cond, then, other
        self.depth = max(cond.depth, then.depth, other.depth) + 1

    def compute(self, env):
        return np.where(_truth(self.cond.compute(env)), self.then.compute(env), self.other.compute(env))

    def __str__(self):
        return f"({self.cond} ? {self.then} : {self.other})"


class Call(Node):
    __slots__ = ("name", "args")

    def __init__(self, name: str, args: list):
        self.name, self.args = name, args
        self.depth = max(a.depth for a in args) + 1

    def compute(self, env):
        return FUNCTIONS[self.name][2](*(a.compute(env) for a in self.args))

    def __str__(self):
        return f"{self.name}(" + ", ".join(str(a) for a in self.args) + ")"


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = self._tokenize()
        self.pos = 0
        self.nesting = 0

    def error(self, column: int, what: str) -> MMError:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        shown = shown.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        return MMError(f"formula '{shown}': column {column}: {what}")

    def _tokenize(self):
        """(kind, value, 1-based column) triples; kind is 'num', 'name', 'op' or 'end'."""
        text, tokens, pos = self.text, [], 0
        while pos < len(text):
            ch = text[pos]
            if ch in _SPACE:
                pos += 1
                continue
            m = _NUMBER.match(text, pos)
            if m:
                tokens.append(("num", float(m.group()), pos + 1))
                pos = m.end()
                continue
            m = _NAME.match(text, pos)
            if m:
                word = m.group()
                if word in ("and", "or"):
                    tokens.append(("op", _OP_ALIASES[word], pos + 1))
                else:
                    tokens.append(("name", word, pos + 1))
                pos = m.end()
                continue
            for op in _OPERATORS:
                if text.startswith(op, pos):
                    tokens.append(("op", _OP_ALIASES.get(op, op), pos + 1))
                    pos += len(op)
                    break
            else:
                raise self.error(pos + 1, f"unexpected character {ch!r}")
        tokens.append(("end", None, len(text) + 1))
        return tokens

    def peek(self):
        return self.tokens[self.pos]

    def advance(self):
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    @staticmethod
    def describe(tok) -> str:
        kind, value, _ = tok
        if kind == "end":
            return "the end of the formula"
        if kind == "num":
            return f"the number {value:g}"
        return f"'{value}'"

    def expect(self, op: str):
        tok = self.peek()
        if tok[0] != "op" or tok[1] != op:
            raise self.error(tok[2], f"expected '{op}', found {self.describe(tok)}")
        self.advance()

    def parse(self) -> Node:
        tree = self.expression(0)
        tok = self.peek()
        if tok[0] != "end":
            raise self.error(tok[2], f"expected an operator or the end, found {self.describe(tok)}")
        return tree

    def expression(self, min_bp: int) -> Node:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(self.peek()[2], f"nested more than {MAX_NESTING} levels deep")
        left = self.prefix()
        chain = None  # the Binary this loop is extending, with its binding power
        while True:
            kind, op, column = self.peek()
            if kind != "op":
                break
            if op == "?":
                if _TERNARY_BP <= min_bp:
                    break
                self.advance()
                then = self.expression(0)
                self.expect(":")
                other = self.expression(0)
                left, chain = Ternary(left, then, other), None
            elif op in _BINARY:
                bp, right_assoc = _BINARY[op]
                if bp <= min_bp:
                    break
                self.advance()
                right = self.expression(bp - 1 if right_assoc else bp)
                if right_assoc:
                    left, chain = Binary(left, [(op, right)]), None
                elif chain is not None and chain[1] == bp:
                    chain[0].append(op, right)
                else:
                    left = Binary(left, [(op, right)])
                    chain = (left, bp)
            else:
                break
            if left.depth > MAX_TREE_DEPTH:
                raise self.error(column, f"nested more than {MAX_TREE_DEPTH} operations deep")
        if left.depth > MAX_TREE_DEPTH:
            raise self.error(self.peek()[2], f"nested more than {MAX_TREE_DEPTH} operations deep")
        self.nesting -= 1
        return left

    def prefix(self) -> Node:
        kind, value, column = self.advance()
        if kind == "num":
            return Num(value)
        if kind == "op" and value in ("-", "+", "!"):
            return Unary(value, self.expression(_UNARY_BP))
        if kind == "op" and value == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if kind == "name":
            return self.name(value, column)
        if kind == "end":
            raise self.error(column, "expected a number, a name or '(' but the formula ends")
        raise self.error(column, f"expected a number, a name or '(', found '{value}'")

    def name(self, word: str, column: int) -> Node:
        is_call = self.peek()[0] == "op" and self.peek()[1] == "("
        bare = word[len("Math."):] if word.startswith("Math.") else word
        if is_call:
            if bare not in FUNCTIONS:
                allowed = ", ".join(FUNCTIONS)
                raise self.error(column, f"unknown function '{word}'; allowed: {allowed}")
            self.advance()
            args = []
            if not (self.peek()[0] == "op" and self.peek()[1] == ")"):
                args.append(self.expression(0))
                while self.peek()[0] == "op" and self.peek()[1] == ",":
                    self.advance()
                    args.append(self.expression(0))
            self.expect(")")
            low, high, _ = FUNCTIONS[bare]
            if len(args) < low or (high is not None and len(args) > high):
                if low == high:
                    wanted = str(low)
                else:
                    wanted = f"{low} or more" if high is None else f"{low} to {high}"
                raise self.error(
                    column, f"function '{word}' takes {wanted} argument(s), got {len(args)}"
                )
            return Call(bare, args)
        if word in VARIABLES:
            return Var(word)
        if word in CONSTANTS:
            return Num(CONSTANTS[word])
        if word.startswith("Math.") and (bare in MATH_CONSTANTS or bare in CONSTANTS):
            return Num(MATH_CONSTANTS.get(bare, CONSTANTS.get(bare)))
        if bare in FUNCTIONS:
            raise self.error(
                column, f"function '{word}' needs its arguments in parentheses: {word}(...)"
            )
        allowed = ", ".join(VARIABLES + tuple(CONSTANTS))
        raise self.error(column, f"unknown name '{word}'; allowed: {allowed}")


# ---------------------------------------------------------------------------------------------
# Public API


class Formula:
    """A parsed formula. `str(formula)` is a canonical, fully parenthesised spelling."""

    __slots__ = ("text", "tree")

    def __init__(self, text: str, tree: Node):
        self.text, self.tree = text, tree

    def __str__(self):
        return str(self.tree)

    def __repr__(self):
        return f"Formula({self.text!r})"

    def evaluate(self, h: int, w: int) -> np.ndarray:
        """The formula's value at every (i, j) of an h x w grid, float64, shape (h, w)."""
        h, w = _size(h, "h"), _size(w, "w")
        # Broadcastable grids: the same values as np.indices, without two full-size copies.
        env = {
            "i": np.arange(h, dtype=np.float64)[:, None],
            "j": np.arange(w, dtype=np.float64)[None, :],
            "h": float(h),
            "w": float(w),
        }
        with np.errstate(all="ignore"):
            value = self.tree.compute(env)
            return np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), (h, w)))


def _size(n, label: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise MMError(f"formula grid size {label} must be a whole number >= 0, got {n!r}")
    return int(n)


def parse(text: str) -> Formula:
    """Parse formula text; raises MMError naming the column and what was expected."""
    if not isinstance(text, str):
        raise MMError(f"formula must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise MMError(f"formula is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise MMError("formula is empty; write an expression in i, j, h, w such as 'i + j'")
    return Formula(text, _Parser(text).parse())


def evaluate(text: str, h: int, w: int) -> np.ndarray:
    """parse(text).evaluate(h, w)."""
    return parse(text).evaluate(h, w)
