"""Which trees a trace holds: each matmul not drawn inside another is the root of a tree
(residual adds, norms and reshapes break a computation into several). Names are settled
here, one per drawn matrix, unique within a tree."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..core import expr as exprmod
from . import graph
from .graph import Node

_BAD = re.compile(r"[^\w.\-!#$%^&/\[\]]")


@dataclass
class Tree:
    root: Node
    name: str
    matmuls: int
    cells: int
    expr: str
    is_output: bool


def _subtree(node: Node, out: list) -> list:
    if node.is_matmul:
        _subtree(node.left, out)
        _subtree(node.right, out)
    out.append(node)
    return out


def _sources(node: Node, out: set) -> None:
    """Matmuls a drawn matmul stands for (its raw form, its whole before a block, before a
    transpose). A leaf copy of a matmul (a bias it could not carry) does not draw it."""
    while node.is_matmul and node.source is not None:
        node = node.source[0]
        if id(node) in out:
            return
        out.add(id(node))


def roots(nodes: list[Node]) -> list[Node]:
    """Matmuls not drawn inside another root's tree (nor standing behind one of its nodes).
    Latest first: a consumer is always made after what it reads, so a node's possible
    parents are settled before it is."""
    drawable = sorted((n for n in nodes if n.is_matmul and n.epilogue not in graph.PARTIAL),
                      key=lambda n: -n.order)
    covered: set[int] = set()
    out = []
    for n in drawable:
        if id(n) in covered:
            continue
        out.append(n)
        _sources(n, covered)
        for sub in _subtree(n, [])[:-1]:
            covered.add(id(sub))
            _sources(sub, covered)
    return out[::-1]


def _clean(name: str, fallback: str) -> str:
    name = _BAD.sub("_", name.strip()) or fallback
    return name if re.match(r"\w", name) else "_" + name


class Names:
    """One name per node of a tree: its best hint, made valid and unique."""

    def __init__(self):
        self.of: dict[int, str] = {}
        self.taken: set[str] = set()
        self.count = 0

    def __call__(self, node: Node) -> str:
        if id(node) in self.of:
            return self.of[id(node)]
        self.count += 1
        _, hint = graph.name_of(node)
        name = _clean(hint, f"m{self.count}" if node.is_matmul else f"x{self.count}")
        base, i = name, 2
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        self.of[id(node)] = name
        return name


def to_expr(root: Node, root_name: str = "") -> tuple[exprmod.MatMul, dict, dict]:
    """The tree as mm's expression, with leaf values and epilogues by name. A matmul drawn
    twice is computed once; its second use reads its values as a leaf."""
    names = Names()
    if root_name:
        names.of[id(root)] = root_name
        names.taken.add(root_name)
    leaves: dict[str, object] = {}
    epilogues: dict[str, str] = {}
    placed: set[int] = set()

    def build(node: Node):
        name = names(node)
        if not node.is_matmul or id(node) in placed:
            if node.is_matmul:
                name = names(graph.Node(node.value, names=[(9, name + "_again")]))
            leaves[name] = node.value
            return exprmod.Leaf(name)
        placed.add(id(node))
        left, right = build(node.left), build(node.right)
        epilogues[name] = node.epilogue
        return exprmod.MatMul(name, left, right, named=True)

    return build(root), leaves, epilogues


def _cells(tree, leaves) -> int:
    """Cells drawn, as Spec.cell_count counts them: every leaf occurrence and every result."""
    shapes: dict[int, tuple] = {}
    total = 0
    for node in exprmod.walk(tree):
        if isinstance(node, exprmod.Leaf):
            shapes[id(node)] = leaves[node.name].shape
        else:
            shapes[id(node)] = (shapes[id(node.left)][0], shapes[id(node.right)][1])
        total += shapes[id(node)][0] * shapes[id(node)][1]
    return total


def find(rec) -> list[Tree]:
    """Every tree, largest first (matmuls, then cells); the function's output wins a tie."""
    out = []
    for r in roots(rec.nodes):
        tree, leaves, _ = to_expr(r)
        mms = exprmod.matmuls(tree)
        cells = _cells(tree, leaves)
        out.append(Tree(r, tree.name, len(mms), cells, exprmod.to_text(tree),
                        r is rec.output))
    out.sort(key=lambda t: (-t.matmuls, not t.is_output, -t.cells, t.root.order))
    seen: dict[str, int] = {}
    for t in out:   # --root picks a tree by its root's name: make those unique
        seen[t.name] = seen.get(t.name, 0) + 1
        if seen[t.name] > 1:
            name = f"{t.name}_{seen[t.name]}"
            tree, _, _ = to_expr(t.root, name)
            t.name, t.expr = name, exprmod.to_text(tree)
    return out
