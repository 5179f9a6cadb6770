"""Fill a preset's leaves from a real attention head: the [model] table names the model,
layer, head and text; leaves are matched to the head's matrices by name.

Leaf names (an optional `_suffix` is allowed, e.g. `wQ_5_4`, `input_0_5`):
    input, input_t, query (the last token's row of input), wQ, wK_t, wV, wO,
    to draw them as given matrices, Q, K_t, V, attn,
    wQK = wQ @ wK_t, the head's d x d query-key circuit (before RoPE),
    and low-rank factors of the real weights, wQ_A @ wQ_B (likewise wK_t, wV, wO): the best
    rank-r approximation (truncated SVD, r = the declared inner size), split as
    U_r sqrt(S_r) and sqrt(S_r) V_r^T. This is the structure LoRA adapters have.
Biases are drawn, not dropped: when a preset declares `input` one column wider than the
model (d + 1), that column is all ones and each weight matrix gets one more row holding its
bias, so `input @ wQ` is exactly the model's `input @ W_q + b_q`.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import MMError
from ..outputs import describe
from .capture import FORMAT_VERSION, Capture, capture_head

# longest first, so `input_t_0_5` is input_t and not input
ROLES = ("wK_t_A", "wK_t_B", "wQK_A", "wQK_B", "wQ_A", "wQ_B", "wV_A", "wV_B", "wO_A", "wO_B",
         "input_t", "input", "query", "wK_t", "wQK", "wQ", "wV", "wO", "K_t", "Q", "V", "attn")


def role_of(name: str) -> str | None:
    for role in ROLES:
        if name == role or name.startswith(role + "_"):
            return role
    return None


def _cache_dir() -> Path:
    """The user's cache folder (bpy_env points XDG_CACHE_HOME at a per-run folder for
    Blender itself and keeps the user's in MM_BLENDER_USER_CACHE)."""
    base = (os.environ.get("MM_BLENDER_USER_CACHE") or os.environ.get("XDG_CACHE_HOME")
            or os.path.join(Path.home(), ".cache"))
    return Path(base) / "mm_blender" / "captures"


def _read_text(spec) -> str | None:
    if not spec.model.text:
        return None
    path = Path(spec.model.text)
    if not path.is_absolute() and spec.base_dir is not None:
        path = spec.base_dir / path
    kind = describe(path)
    if kind and kind != "a file":   # a FIFO would never end
        raise MMError(f"{spec.origin}: [model] text '{path}' is {kind}, not a text file")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise MMError(f"{spec.origin}: [model] text file '{path}' cannot be read: "
                      f"{e.strerror}") from None
    except UnicodeDecodeError:
        raise MMError(f"{spec.origin}: [model] text file '{path}' is not UTF-8 text") from None


def check_model(spec) -> None:
    """Before any work: the [model] table's capture file reads, or its model opens (headers
    only) and has the layer, head and tokens asked for. A cached capture needs neither."""
    m = spec.model
    try:
        if m.capture:
            load_capture(spec)
            return
        if not m.model:
            load_capture(spec)   # the error naming what [model] needs
        if _cached_path(spec, _read_text(spec)).is_file():
            return
        from .capture import check_ranges, open_model
        check_ranges(open_model(m.model), m.model, m.layer, m.head, m.tokens)
    except MMError as e:
        raise MMError(f"{spec.origin}: [model]: {e}") from None


def _cached_path(spec, text) -> Path:
    m = spec.model
    key_src = f"v{FORMAT_VERSION}|{m.model}|{m.layer}|{m.head}|{m.tokens}|{text or ''}"
    model_path = Path(m.model)
    if model_path.exists():
        key_src += f"|{model_path.resolve()}|{model_path.stat().st_mtime_ns}"
    key = hashlib.sha256(key_src.encode("utf-8")).hexdigest()[:16]
    return _cache_dir() / f"{Path(m.model).name}_l{m.layer}h{m.head}_{key}.npz"


def load_capture(spec, progress=None) -> Capture:
    """The capture for a spec's [model] table: a given .npz, else computed (and cached on
    disk by model, layer, head, tokens and text, so rebuilding is quick)."""
    m = spec.model
    if m.capture:
        path = Path(m.capture)
        if not path.is_absolute() and spec.base_dir is not None:
            path = spec.base_dir / path
        return Capture.load(path)
    if not m.model:
        raise MMError(f"{spec.origin}: [model] needs model = \"smollm2\" | \"minilm\" | "
                      "\"gpt2\" | a path, or capture = \"file.npz\"")
    text = _read_text(spec)
    cached = _cached_path(spec, text)
    if cached.is_file():
        try:
            return Capture.load(cached)
        except MMError:
            cached.unlink(missing_ok=True)   # a stale or broken cache entry: recompute
    cap = capture_head(m.model, m.layer, m.head, text, m.tokens, progress=progress)
    try:
        cap.save(cached)
    except MMError:
        pass   # caching is an optimisation only
    return cap


def head_arrays(cap: Capture, bias: bool) -> dict[str, np.ndarray]:
    """The head's matrices by role; with `bias`, input gets a ones column and the weights a
    bias row (K_t's weights a bias column)."""
    inp = cap.input.astype(np.float32)
    wQ, wK, wV = cap.wQ, cap.wK, cap.wV
    if bias:
        inp = np.concatenate([inp, np.ones((inp.shape[0], 1), np.float32)], axis=1)
        wQ = np.concatenate([wQ, cap.bQ[None, :]], axis=0)
        wK = np.concatenate([wK, cap.bK[None, :]], axis=0)
        wV = np.concatenate([wV, cap.bV[None, :]], axis=0)
    return {
        "input": inp, "input_t": inp.T, "query": inp[-1:], "wQ": wQ, "wK_t": wK.T, "wV": wV,
        "wO": cap.wO, "Q": cap.Q, "K_t": cap.K.T, "V": cap.V, "attn": cap.attn,
        "wQK": (cap.wQ.astype(np.float64) @ cap.wK.T.astype(np.float64)).astype(np.float32),
    }


def low_rank(w: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) with A @ B the best rank-`rank` approximation of w (Eckart-Young)."""
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    return ((u[:, :rank] * root).astype(np.float32), (root[:, None] * vt[:rank]).astype(np.float32))


def _add_factors(arrays: dict, model_leaves, origin: str) -> None:
    """wX_A / wX_B factors for the ranks the preset declares."""
    for base in ("wQ", "wK_t", "wV", "wO", "wQK"):
        a = [leaf for leaf in model_leaves if role_of(leaf.name) == base + "_A"]
        b = [leaf for leaf in model_leaves if role_of(leaf.name) == base + "_B"]
        if not a and not b:
            continue
        ranks = {leaf.w for leaf in a} | {leaf.h for leaf in b}
        if len(ranks) != 1:
            raise MMError(f"{origin}: the factors of {base} declare different ranks "
                          f"({', '.join(str(r) for r in sorted(ranks))})")
        rank = ranks.pop()
        w = arrays[base]
        if rank > min(w.shape):
            raise MMError(f"{origin}: rank {rank} for {base}_A @ {base}_B is more than "
                          f"{base}'s {w.shape[0]}x{w.shape[1]} can have")
        arrays[base + "_A"], arrays[base + "_B"] = low_rank(w, rank)


def capture_leaves(spec, progress=None, capture: Capture | None = None) -> dict[str, np.ndarray]:
    """Arrays for every leaf of a [model] spec whose name has a role; shapes must match."""
    cap = capture or load_capture(spec, progress)
    d = cap.input.shape[1]
    # a preset that declares input (or the weights) one wider than the model shows biases
    model_leaves = [leaf for leaf in spec.leaves.values() if leaf.init == "model"]
    widths = {leaf.w for leaf in model_leaves if role_of(leaf.name) in ("input", "query")}
    widths |= {leaf.h for leaf in model_leaves if role_of(leaf.name) in ("wQ", "wV")}
    bias = (d + 1) in widths
    arrays = head_arrays(cap, bias)
    _add_factors(arrays, model_leaves, spec.origin)
    out = {}
    for leaf in spec.leaves.values():
        if leaf.init != "model":
            continue
        role = role_of(leaf.name)
        if role is None:
            raise MMError(f"{spec.origin}: leaf {leaf.name!r} has init 'model' but its name is "
                          f"not one of the head's matrices ({', '.join(ROLES)}, optionally "
                          "with a _suffix)")
        arr = arrays[role]
        if arr.shape != (leaf.h, leaf.w):
            hint = (f" (the model is {d} wide with head dim {cap.wQ.shape[1]} over "
                    f"{cap.input.shape[0]} tokens" + ("; +1 for the bias row/column" if bias else "")
                    + ")")
            raise MMError(f"{spec.origin}: leaf {leaf.name!r} is declared {leaf.h}x{leaf.w} but "
                          f"{cap.model} layer {cap.layer} head {cap.head} gives "
                          f"{arr.shape[0]}x{arr.shape[1]}{hint}")
        out[leaf.name] = arr
    if not out:
        raise MMError(f"{spec.origin}: [model] is set but no leaf has init = \"model\"")
    return out
