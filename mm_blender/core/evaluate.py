"""Values: leaf matrices from their initialisers, every matmul result with its epilogue (numpy).

NaN and inf are carried through, never replaced (mm draws NaN white).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import MMError
from . import expr as exprmod
from .spec import Spec

POINTWISE_EPILOGUES = ("none", "relu", "gelu", "sigmoid", "silu", "tanh", "x**2", "x/k",
                       "x/sqrt(k)")


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26, the same approximation mm uses (max error 1.5e-7).
    a1, a2, a3, a4, a5, p = (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                             1.061405429, 0.3275911)
    ax = np.abs(x)
    t = 1.0 / (1.0 + p * ax)
    y = ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t
    return np.sign(x) * (1.0 - y * np.exp(-ax * ax))


def _softmax_rows(x: np.ndarray, causal: bool) -> np.ndarray:
    h, w = x.shape
    if causal:
        mask = np.arange(w)[None, :] > np.arange(h)[:, None]
        x = np.where(mask, -np.inf, x)
    finite_max = np.where(np.isfinite(x), x, -np.inf).max(axis=1, keepdims=True)
    finite_max = np.where(np.isfinite(finite_max), finite_max, 0.0)
    e = np.exp(x - finite_max)
    out = e / e.sum(axis=1, keepdims=True)
    if causal:
        out = np.where(mask, 0.0, out)
    return out


def rope(x: np.ndarray, theta: float, n_positions: int = 0) -> np.ndarray:
    """Rotary position embedding, rows are positions (the Hugging Face rotate-half layout:
    dimensions d and d + n/2 form a pair). The rows are the LAST positions of a sequence of
    n_positions (so a single decoding row sits at position n_positions - 1)."""
    t, n = x.shape
    half = n // 2
    start = max(0, n_positions - t)
    inv_freq = 1.0 / theta ** (np.arange(0, n, 2, dtype=np.float64)[:half] / n)
    angles = np.outer(np.arange(start, start + t, dtype=np.float64), inv_freq)
    cos, sin = np.cos(angles), np.sin(angles)
    a, b = x[:, :half], x[:, half:2 * half]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin, x[:, 2 * half:]], axis=1)


def apply_epilogue(x: np.ndarray, epilogue: str, k: int, rope_theta: float = 10000.0,
                   n_positions: int = 0) -> np.ndarray:
    """Apply one of mm's epilogues to a matmul's raw result `x` (float64), k = contraction size.

    Pointwise epilogues are applied elementwise (so they also apply to partial sums); the
    whole-matrix ones (layernorm, softmax family) need the complete matrix.
    """
    with np.errstate(all="ignore"):
        if epilogue == "none":
            return x
        if epilogue == "relu":
            return np.where(x > 0, x, np.where(np.isnan(x), x, 0.0))
        if epilogue == "gelu":
            return x * (1.0 + _erf(x / np.sqrt(2.0))) / 2.0
        if epilogue == "sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if epilogue == "silu":
            return x / (1.0 + np.exp(-x))
        if epilogue == "tanh":
            return np.tanh(x)
        if epilogue == "x**2":
            return x * x
        if epilogue == "x/k":
            return x / k
        if epilogue == "x/sqrt(k)":
            return x / np.sqrt(k)
        if epilogue == "layernorm":
            # over the whole matrix, eps 1e-5, no affine (as mm)
            mean = x.mean()
            var = (x * x).mean() - mean * mean
            return (x - mean) / np.sqrt(var + 1e-5)
        if epilogue == "softmax":
            return _softmax_rows(x, causal=False)
        if epilogue == "softmax(x/sqrt(k))":
            return _softmax_rows(x / np.sqrt(k), causal=False)
        if epilogue == "softmax(tril(x/sqrt(k)))":
            return _softmax_rows(x / np.sqrt(k), causal=True)
        if epilogue == "rope":
            return rope(x, rope_theta, n_positions)
        if epilogue == "rope_t":
            return rope(x.T, rope_theta, n_positions).T
    raise MMError(f"unknown epilogue {epilogue!r}")


def pointwise_part(epilogue: str) -> str:
    """The part of an epilogue that can be applied to partial sums (mm applies it there too)."""
    if epilogue in POINTWISE_EPILOGUES:
        return epilogue
    if epilogue in ("softmax(x/sqrt(k))", "softmax(tril(x/sqrt(k)))"):
        return "x/sqrt(k)"
    return "none"   # layernorm, softmax and rope need the whole matrix


def leaf_seed(seed: int, name: str) -> int:
    """A stable per-leaf seed: the same preset gives the same values on every run and machine."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) & 0x7FFFFFFF


@dataclass
class Values:
    """Every matrix's values: leaves by name, matmul results by tree path."""
    leaves: dict[str, np.ndarray] = field(default_factory=dict)
    results: dict[str, np.ndarray] = field(default_factory=dict)

    def of(self, node: exprmod.Node) -> np.ndarray:
        if isinstance(node, exprmod.Leaf):
            return self.leaves[node.name]
        return self.results[node.path]

    def all_arrays(self):
        yield from self.leaves.values()
        yield from self.results.values()


def leaf_values(spec: Spec, overrides: dict[str, np.ndarray] | None = None,
                allow_network: bool = True) -> dict[str, np.ndarray]:
    """Initialise every leaf (float32, shape (h, w)). `overrides` supplies arrays by name
    (e.g. from a real-model capture) and must match the declared shapes."""
    from .initialisers import init_values

    overrides = overrides or {}
    out: dict[str, np.ndarray] = {}
    ordered = sorted(spec.leaves.values(), key=lambda leaf: leaf.init == "transpose")
    for leaf in ordered:
        if leaf.name in overrides:
            arr = np.asarray(overrides[leaf.name], dtype=np.float32)
            if arr.shape != (leaf.h, leaf.w):
                raise MMError(f"data for leaf {leaf.name!r} is {arr.shape[0]}x{arr.shape[1]}"
                              f" but the preset declares {leaf.h}x{leaf.w}")
            out[leaf.name] = arr
        elif leaf.init == "model":
            raise MMError(f"{spec.origin}: leaf {leaf.name!r} has init 'model' but no data: "
                          "add a [model] table (model, layer, head) or capture = \"file.npz\"")
        elif leaf.init == "transpose":
            out[leaf.name] = np.ascontiguousarray(out[leaf.source].T)
        else:
            out[leaf.name] = np.asarray(init_values(
                leaf.name, leaf.h, leaf.w, leaf.init, min=leaf.min, max=leaf.max,
                dropout=leaf.dropout, formula=leaf.formula, file=leaf.file,
                tensor=leaf.tensor, url=leaf.url, seed=leaf_seed(spec.seed, leaf.name),
                base_dir=spec.base_dir, allow_network=allow_network), dtype=np.float32)
    return out


def evaluate(spec: Spec, overrides: dict[str, np.ndarray] | None = None,
             allow_network: bool = True) -> Values:
    """Compute every leaf and every matmul result (epilogue applied), leaves to root."""
    values = Values(leaves=leaf_values(spec, overrides, allow_network))
    for node in exprmod.walk(spec.tree):
        if isinstance(node, exprmod.MatMul):
            left = values.of(node.left).astype(np.float64)
            right = values.of(node.right).astype(np.float64)
            with np.errstate(all="ignore"):
                raw = left @ right
            epi = spec.matmul(node).epilogue
            theta, n_pos = ((spec.model.rope_theta, spec.model.tokens) if spec.model is not None
                            else (10000.0, 0))
            values.results[node.path] = apply_epilogue(raw, epi, left.shape[1], theta,
                                                       n_pos).astype(np.float32)
    return values
