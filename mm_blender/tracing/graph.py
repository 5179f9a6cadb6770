"""The traced computation as mm sees it: 2-D matrices (leaves with torch's values) and matmuls
of them with an epilogue, plus the rewrites that keep a tree connected (a ones column for
biases, transposes, column blocks). numpy only: torch stays in `record`."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..core.evaluate import apply_epilogue

# mm epilogues that map 1 to 1, so a result can carry the ones column of a later bias
ONES_SAFE = ("none", "relu", "x**2")
POINTWISE = ("none", "relu", "gelu", "sigmoid", "silu", "tanh", "x**2")
# Not mm epilogues: states on the way to one (a causal mask before the softmax). A matmul in
# such a state is never drawn as such; only its completed form is.
PARTIAL = ("tril(x)", "tril(x/sqrt(k))")
NEXT = {
    "none": ("relu", "gelu", "sigmoid", "silu", "tanh", "x**2", "x/k", "x/sqrt(k)", "softmax",
             "layernorm", "tril(x)"),
    "x/sqrt(k)": ("softmax(x/sqrt(k))", "tril(x/sqrt(k))"),
    "tril(x)": ("tril(x/sqrt(k))",),
    "tril(x/sqrt(k))": ("softmax(tril(x/sqrt(k)))",),
}
MASKED = -1e30   # a masked score: -inf, or a large negative number as many codes write it

_counter = itertools.count()


@dataclass(eq=False)
class Node:
    """One drawn matrix. A leaf holds torch's values; a matmul draws epilogue(left @ right)."""
    value: np.ndarray                 # 2-D float32: what torch computed (for a matmul too)
    left: "Node | None" = None
    right: "Node | None" = None
    epilogue: str = "none"
    names: list = field(default_factory=list)   # (priority, name) hints; best wins
    source: tuple | None = None       # (node, suffix): named after it when it has no name
    what: str = ""                    # the torch op that made it (for listings)
    superseded: bool = False          # an epilogue applied to it made a new node
    used: bool = False                # an argument of some matmul
    order: int = field(default_factory=lambda: next(_counter))
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def is_matmul(self) -> bool:
        return self.left is not None

    @property
    def k(self) -> int:
        return self.left.value.shape[1]

    @property
    def has_ones(self) -> bool:
        v = self.value
        return v.shape[1] > 0 and bool(np.all(v[:, -1] == 1.0))

    def hint(self, name: str, priority: int) -> None:
        if name:
            self.names.append((priority, name))


def leaf(value, what: str = "") -> Node:
    return Node(np.ascontiguousarray(value, dtype=np.float32), what=what)


def raw_product(left: Node, right: Node) -> np.ndarray:
    with np.errstate(all="ignore"):
        return left.value.astype(np.float64) @ right.value.astype(np.float64)


def epilogue_values(raw: np.ndarray, epilogue: str, k: int) -> np.ndarray:
    if epilogue == "tril(x)" or epilogue == "tril(x/sqrt(k))":
        x = raw / np.sqrt(k) if epilogue == "tril(x/sqrt(k))" else raw
        h, w = x.shape
        return np.where(np.arange(w)[None, :] > np.arange(h)[:, None], -np.inf, x)
    return apply_epilogue(raw, epilogue, k)


def close(expected: np.ndarray, actual: np.ndarray, scale: float = 0.0) -> bool:
    """torch's float32 arithmetic against ours in float64: a few ulps of the result's scale
    (or of `scale`, the input's, when larger: gelu(-5) is 1e-6 give or take 4e-7 in mm's
    erf). Masked scores match whether torch wrote -inf or a large negative number."""
    if expected.shape != actual.shape:
        return False
    actual = actual.astype(np.float64)
    masked = np.isneginf(expected)
    if masked.any():
        if not np.all(actual[masked] <= MASKED) and not np.all(np.isneginf(actual[masked])):
            return False
        expected, actual = expected[~masked], actual[~masked]
    finite = np.isfinite(expected)
    if not np.array_equal(finite, np.isfinite(actual)):
        return False
    if not finite.any():
        return True
    scale = max(float(np.abs(expected[finite]).max()), scale)
    with np.errstate(all="ignore"):
        return bool(np.allclose(actual[finite], expected[finite], rtol=1e-4,
                                atol=2e-5 * max(scale, 1e-6)))


def _input_scale(raw: np.ndarray, epilogue: str) -> float:
    """For a pointwise epilogue, errors scale with its input; softmax's with its output."""
    if epilogue not in POINTWISE + ("x/k", "x/sqrt(k)") or not raw.size:
        return 0.0
    finite = raw[np.isfinite(raw)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def matmul(left: Node, right: Node, value, epilogue: str = "none", what: str = "") -> Node | None:
    """A matmul node if epilogue(left @ right) is what torch computed, else None."""
    value = np.asarray(value, dtype=np.float32)
    if left.value.shape[1] != right.value.shape[0]:
        return None
    raw = raw_product(left, right)
    if not close(epilogue_values(raw, epilogue, left.value.shape[1]), value,
                 _input_scale(raw, epilogue)):
        return None
    left.used = right.used = True
    return Node(value, left, right, epilogue, what=what)


def extend(node: Node, value) -> Node | None:
    """An elementwise op (or softmax, a mask) applied to a matmul's result: the same matmul
    with a longer epilogue, if some mm epilogue gives exactly torch's values."""
    value = np.asarray(value, dtype=np.float32)
    if node.value.shape != value.shape:
        return None
    if np.array_equal(node.value, value, equal_nan=True):
        return node                       # a copy, .contiguous(), dropout in eval mode
    if not node.is_matmul:
        return None
    raw = raw_product(node.left, node.right)
    for epi in NEXT.get(node.epilogue, ()):
        if close(epilogue_values(raw, epi, node.k), value, _input_scale(raw, epi)):
            new = Node(value, node.left, node.right, epi, what=node.what, source=(node, ""))
            if epi not in PARTIAL:
                base = node
                while base is not None:   # the raw and partial forms are not drawn
                    base.superseded = True
                    base = base._memo.get("base")
            new._memo["base"] = node
            return new
    return None


def transpose(node: Node) -> Node:
    """The same matrix transposed: a leaf's values, or (A @ B)^T = B^T @ A^T for a matmul
    with a pointwise epilogue (otherwise a leaf of the transposed values)."""
    if "T" in node._memo:
        return node._memo["T"]
    if node.is_matmul and node.epilogue in POINTWISE:
        new = Node(np.ascontiguousarray(node.value.T), transpose(node.right),
                   transpose(node.left), node.epilogue, what=node.what)
    else:
        new = leaf(node.value.T, node.what)
    new.source = (node, "_t")
    new._memo["T"] = node
    node._memo["T"] = new
    return new


def with_ones(node: Node) -> Node:
    """The matrix with a column of ones appended (how a bias is drawn: [x | 1] @ [[W], [b]]).
    A matmul whose epilogue keeps 1 as 1 computes that column itself, so the tree stays
    connected; anything else becomes a leaf of the widened values."""
    if node.has_ones:
        return node
    if "ones" in node._memo:
        return node._memo["ones"]
    ones = np.ones((node.value.shape[0], 1), np.float32)
    value = np.concatenate([node.value, ones], axis=1)
    new = None
    if node.is_matmul and node.epilogue in ONES_SAFE and not node.right.is_matmul:
        left = with_ones(node.left)
        r = node.right.value
        if left is not node.left:          # the left gained a ones column: a zero row for it
            r = np.concatenate([r, np.zeros((1, r.shape[1]), np.float32)], axis=0)
        column = np.zeros((r.shape[0], 1), np.float32)
        column[-1] = 1.0                   # the left's ones column, copied to the result
        right = leaf(np.concatenate([r, column], axis=1), node.right.what)
        right.source = (node.right, "")
        new = matmul(left, right, value, node.epilogue, node.what)
    if new is None:
        new = leaf(value, node.what)
    new.source = (node, "")
    node._memo["ones"] = new
    return new


def with_bias(weight: Node, bias: np.ndarray) -> Node:
    """A right argument with a bias row under it."""
    value = np.concatenate([weight.value, np.asarray(bias, np.float32).reshape(1, -1)], axis=0)
    new = leaf(value, weight.what)
    new.source = (weight, "")
    return new


def _row_choices(h: int, m: int):
    """Row sets of an h-row result that m rows of one batch entry can be: all of them, a
    contiguous block (batch-major rows) or every (h/m)-th row (sequence-major, as torch's
    MultiheadAttention lays out (T, B, E))."""
    if m == h:
        yield "", slice(None)
        return
    if h % m:
        return
    count = h // m
    for b in range(count):
        yield f"[{b * m}-{(b + 1) * m}]", slice(b * m, (b + 1) * m)
    for b in range(count):
        yield f"[{b}::{count}]".replace(":", "-"), slice(b, None, count)


def column_block(node: Node, value: np.ndarray) -> Node | None:
    """`value` as a block of a matmul's result (one head's columns of a fused projection,
    one batch entry's rows): the same product of those rows of the left (a leaf) and those
    columns of the right."""
    if not node.is_matmul or node.epilogue not in POINTWISE or node.right.is_matmul:
        return None
    h, w = node.value.shape
    m, n = value.shape
    if w % n or (m, n) == (h, w):
        return None
    for row_tag, rows in _row_choices(h, m):
        if row_tag and node.left.is_matmul:
            continue
        for c0 in range(0, w, n):
            if not np.array_equal(node.value[rows, c0:c0 + n], value, equal_nan=True):
                continue
            key = ("block", row_tag, c0, n)
            if key not in node._memo:
                left = node.left
                if row_tag:
                    left = node._memo.setdefault(("rows", row_tag),
                                                 leaf(node.left.value[rows], node.left.what))
                    left.source = (node.left, "")
                cols = f"[{c0}-{c0 + n}]" if n != w else ""
                right = node.right
                if cols:
                    right = leaf(node.right.value[:, c0:c0 + n], node.right.what)
                    right.source = (node.right, cols)
                new = matmul(left, right, value, node.epilogue, node.what)
                if new is None:
                    return None
                new.source = (node, row_tag + cols)
                node._memo[key] = new
            return node._memo[key]
    return None


def name_of(node: Node, _depth: int = 0) -> tuple[float, str]:
    """(priority, name): the node's best own hint, or its source's name with a suffix
    (x -> x_t for a transpose), whichever is stronger."""
    own = max(node.names, key=lambda pn: pn[0]) if node.names else (-1.0, "")
    if node.source is not None and _depth < 50:
        src, suffix = node.source
        p, n = name_of(src, _depth + 1)
        if n and p > own[0]:
            if suffix == "_t" and n.endswith("_t"):
                return p, n[:-2]
            return p, n + suffix
    return own
