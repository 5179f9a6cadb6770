"""mm's expression language: `@` (left-associative), parentheses and inline names.

`out = (attn = Q @ K_t) @ V` parses to a tree of `Leaf` and `MatMul` nodes. Errors name the
column (1-based) and what was expected.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Union

from ..errors import MMError

# mm's leaf names: a word character first, then word characters or . - ! # $ % ^ & / [ ]
NAME_RE = re.compile(r"\w[\w.\-!#$%^&/\[\]]*")
MAX_EXPR_LENGTH = 4000
# Deeper trees are no picture anyone can read, and every stage walks the tree: the parser
# refuses them (parentheses while parsing, `@` chains once parsed) before anything recurses.
MAX_DEPTH = 100
MAX_NESTING = 200   # parentheses, redundant ones included (the parser recurses on each)


@dataclass
class Leaf:
    name: str
    column: int = 0
    path: str = ""  # position in the tree: "" root, then "l"/"r" per step down

    @property
    def is_matmul(self) -> bool:
        return False


@dataclass
class MatMul:
    name: str
    left: "Node"
    right: "Node"
    named: bool = False  # True when the user gave an inline name (`x = ...`)
    column: int = 0
    path: str = ""

    @property
    def is_matmul(self) -> bool:
        return True


Node = Union[Leaf, MatMul]


def default_name(left: Node, right: Node) -> str:
    """mm's name for an unnamed matmul: `A @ B`, with the right name parenthesised if it has spaces."""
    rname = f"({right.name})" if re.search(r"\s", right.name) else right.name
    return f"{left.name} @ {rname}"


@dataclass
class _Token:
    kind: str  # name, @, (, ), =, end
    text: str
    column: int


def shown(text: str, n: int = 80) -> str:
    """An expression as quoted in an error line: long ones are cut."""
    return repr(text if len(text) <= n else text[:n] + "...")


def _tokens(text: str) -> Iterator[_Token]:
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch.isspace():
            pos += 1
            continue
        if ch in "@()=":
            yield _Token(ch, ch, pos + 1)
            pos += 1
            continue
        m = NAME_RE.match(text, pos)
        if m:
            yield _Token("name", m.group(0), pos + 1)
            pos = m.end()
            continue
        raise MMError(f"expression {shown(text)}: column {pos + 1}: unexpected character {ch!r}; "
                      "expected a matrix name, '@', '(' or ')'")
    yield _Token("end", "", len(text) + 1)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = list(_tokens(text))
        self.i = 0
        self.nesting = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self) -> _Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Token, expected: str):
        found = "end of expression" if tok.kind == "end" else repr(tok.text)
        raise MMError(f"expression {shown(self.text)}: column {tok.column}: expected {expected}, "
                      f"found {found}")

    def parse(self) -> Node:
        node = self.assign()
        tok = self.peek()
        if tok.kind != "end":
            self.fail(tok, "'@' or end of expression")
        return node

    def assign(self) -> Node:
        if self.peek().kind == "name" and self.peek(1).kind == "=":
            name_tok = self.take()
            self.take()
            node = self.chain()
            if not isinstance(node, MatMul):
                raise MMError(f"expression {shown(self.text)}: column {name_tok.column}: a name "
                              f"('{name_tok.text} = ...') can only be given to a matmul, "
                              f"not to the single matrix {node.name!r}")
            node.name = name_tok.text
            node.named = True
            node.column = name_tok.column
            return node
        return self.chain()

    def chain(self) -> Node:
        node = self.term()
        while self.peek().kind == "@":
            at = self.take()
            right = self.term()
            node = MatMul(default_name(node, right), node, right, column=at.column)
        return node

    def term(self) -> Node:
        tok = self.peek()
        if tok.kind == "name":
            self.take()
            if self.peek().kind == "=":
                self.fail(self.peek(), "'@' (an inline name needs parentheses: '(x = A @ B)')")
            return Leaf(tok.text, tok.column)
        if tok.kind == "(":
            self.take()
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise MMError(f"expression {shown(self.text)}: column {tok.column}: parentheses "
                              f"nested more than {MAX_NESTING} levels deep (the depth limit)")
            node = self.assign()
            if self.peek().kind != ")":
                self.fail(self.peek(), "')'")
            self.take()
            self.nesting -= 1
            return node
        self.fail(tok, "a matrix name or '('")


def parse(text: str) -> Node:
    """Parse an mm expression. The root must be a matmul."""
    if not isinstance(text, str) or not text.strip():
        raise MMError("expression is empty: write one like 'A @ B'")
    if len(text) > MAX_EXPR_LENGTH:
        raise MMError(f"expression is too long ({len(text)} characters, at most {MAX_EXPR_LENGTH})")
    root = _Parser(text).parse()
    if not isinstance(root, MatMul):
        raise MMError(f"expression {shown(text)}: expected at least one '@' (a single matrix "
                      f"{root.name!r} is not a matmul)")
    check_depth(root, f"expression {shown(text)}")
    _set_paths(root, "")
    return root


def depth(node: Node) -> int:
    """Levels of the tree (a single matmul of two leaves is 1), counted without recursion."""
    deepest, stack = 0, [(node, 0)]
    while stack:
        n, d = stack.pop()
        if isinstance(n, MatMul):
            deepest = max(deepest, d + 1)
            stack.append((n.left, d + 1))
            stack.append((n.right, d + 1))
    return deepest


def check_depth(root: Node, where: str) -> None:
    d = depth(root)
    if d > MAX_DEPTH:
        raise MMError(f"{where}: the tree is {d} matmuls deep, more than the depth limit "
                      f"of {MAX_DEPTH}")


def _set_paths(node: Node, path: str) -> None:
    node.path = path
    if isinstance(node, MatMul):
        _set_paths(node.left, path + "l")
        _set_paths(node.right, path + "r")


def walk(node: Node) -> Iterator[Node]:
    """Every node, children before their parent (leaves to root), left before right."""
    if isinstance(node, MatMul):
        yield from walk(node.left)
        yield from walk(node.right)
    yield node


def leaves(node: Node) -> list[Leaf]:
    return [n for n in walk(node) if isinstance(n, Leaf)]


def matmuls(node: Node) -> list[MatMul]:
    return [n for n in walk(node) if isinstance(n, MatMul)]


def to_text(node: Node) -> str:
    """Write a tree back as mm would (inline names kept)."""
    if isinstance(node, Leaf):
        return node.name
    left = to_text(node.left)
    if isinstance(node.left, MatMul) and node.left.named:
        left = f"({left})"
    right = to_text(node.right)
    if isinstance(node.right, MatMul):
        right = f"({right})"
    body = f"{left} @ {right}"
    return f"{node.name} = {body}" if node.named else body


def count_matmuls(node: Node) -> int:
    return len(matmuls(node))
