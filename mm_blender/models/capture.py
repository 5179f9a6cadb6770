"""One attention head of a real model, captured as the matrices of mm's attention expression
    out = (attn = (Q = input @ wQ) @ (K_t = wK_t @ input_t)) @ (V = input @ wV) @ wO
from a forward pass over a text; saved and loaded as .npz. The doors (panel, CLI) call
`capture_head` / `write_capture`."""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import outputs
from ..core import file_headers
from ..errors import MMError
from . import gpt2, minilm, smollm2, sources

PRESETS = ("smollm2", "minilm") + tuple(sources.GPT2_FAMILY)
BACKENDS = ("auto", "numpy", "torch")
ARRAYS = ("input", "wQ", "wK", "wV", "bQ", "bK", "bV", "wO", "bO",
          "Q", "K", "V", "attn", "head_out", "out")
FORMAT = "mm_blender.capture"
FORMAT_VERSION = 1


@dataclass(eq=False)
class Capture:
    model: str
    layer: int
    head: int
    causal: bool
    text: str             # the whole text given; `tokens` is the part the model read
    tokens: list[str]
    input: np.ndarray     # T x d: what attention reads (after ln_1 / RMSNorm; BERT: layer input)
    wQ: np.ndarray        # d x hd  (Q_pre = input @ wQ + bQ)
    wK: np.ndarray        # d x hd
    wV: np.ndarray        # d x hd
    bQ: np.ndarray        # hd (zeros where the model has no bias)
    bK: np.ndarray        # hd
    bV: np.ndarray        # hd
    wO: np.ndarray        # hd x d: this head's rows of the output projection
    bO: np.ndarray        # d: the whole layer's output bias, shared by all heads
    Q: np.ndarray         # T x hd, as the model uses it (bias added; RoPE applied for llama)
    K: np.ndarray         # T x hd
    V: np.ndarray         # T x hd
    attn: np.ndarray      # T x T softmax(Q K^T / sqrt(hd)), causal mask where the model has one
    head_out: np.ndarray  # T x hd = attn @ V
    out: np.ndarray       # T x d = head_out @ wO (no bias)
    info: dict = field(default_factory=dict)  # weights file, sizes, backend, seconds...

    # the transposed leaves of mm's expression, K_t = wK_t @ input_t
    @property
    def K_t(self) -> np.ndarray:
        return self.K.T

    @property
    def wK_t(self) -> np.ndarray:
        return self.wK.T

    @property
    def input_t(self) -> np.ndarray:
        return self.input.T

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}

    def save(self, path) -> Path:
        """Write to `path` exactly (an .npz archive, whatever the suffix), through a verified
        temporary file: a failed write leaves an old file at `path` as it was."""
        path = Path(path)
        meta = dict(format=FORMAT, version=FORMAT_VERSION, model=self.model, layer=self.layer,
                    head=self.head, causal=self.causal, text=self.text, tokens=self.tokens,
                    info=self.info)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MMError(f"cannot write capture file {path}: {e.strerror}") from None
        # built in memory (a few MB): a write that fails half way cannot leave numpy's zip
        # writer half closed
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), **self.arrays())
        with outputs.atomic(path, outputs.verify_npz, what="capture file") as tmp:
            with open(tmp, "wb") as f:
                f.write(buf.getbuffer())
        return path

    @classmethod
    def load(cls, path) -> "Capture":
        """A capture .npz, its array headers and metadata fields checked before use."""
        path = Path(path)
        if not path.is_file():
            kind = outputs.describe(path)
            raise MMError(f"capture file {path} " + (f"is {kind}, not a file" if kind
                                                      else "does not exist"))
        try:
            headers = file_headers.npz_headers(path, f"capture file {path}")
        except MMError:
            raise MMError(f"{path} is not a readable capture file (.npz)") from None
        _check_headers(headers, path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                stored = {k: archive[k] for k in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            raise MMError(f"{path} is not a readable capture file (.npz)") from None
        try:
            meta = json.loads(str(stored["meta"]))
        except (json.JSONDecodeError, RecursionError):
            raise MMError(f"{path}: capture metadata is corrupt (not JSON)") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise MMError(f"{path}: not an mm_blender capture" if isinstance(meta, dict)
                          else f"{path}: capture metadata is corrupt")
        _check_meta(meta, path)
        arrays = {k: stored[k].astype(np.float32, copy=False) for k in ARRAYS}
        check_shapes(arrays, len(meta["tokens"]), where=str(path))
        return cls(model=meta["model"], layer=meta["layer"], head=meta["head"],
                   causal=meta["causal"], text=meta["text"], tokens=list(meta["tokens"]),
                   info=meta.get("info") or {}, **arrays)


MAX_CAPTURE_ELEMENTS = 1 << 28   # 1 GiB of float32 per array: far more than any head


def _check_headers(headers: dict, path: Path) -> None:
    """Every array a capture needs, real numbers of a sane size, before any is read."""
    if "meta" not in headers:
        raise MMError(f"{path}: capture file has no 'meta' entry")
    missing = [k for k in ARRAYS if k not in headers]
    if missing:
        raise MMError(f"{path}: capture file is missing {', '.join(missing)}")
    shape, dtype = headers["meta"]
    if dtype.kind != "U" or shape != () or dtype.itemsize > 64 << 20:
        raise MMError(f"{path}: capture metadata is not one JSON string")
    for name in ARRAYS:
        shape, dtype = headers[name]
        if dtype.kind not in "fiu":
            raise MMError(f"{path}: capture array '{name}' holds {dtype} values, not numbers")
        if len(shape) > 2 or file_headers.elements(shape) > MAX_CAPTURE_ELEMENTS:
            raise MMError(f"{path}: capture array '{name}' has shape {list(shape)}, not a "
                          "matrix of an attention head")


_META_TYPES = {"model": (str,), "layer": (int,), "head": (int,), "causal": (bool,),
               "text": (str,), "tokens": (list,)}


def _check_meta(meta: dict, path: Path) -> None:
    for key, types in _META_TYPES.items():
        if key not in meta:
            raise MMError(f"{path}: capture file is missing {key}")
        value = meta[key]
        wrong = not isinstance(value, types) or (types == (int,) and isinstance(value, bool))
        if wrong:
            raise MMError(f"{path}: capture field '{key}' should be "
                          f"{'a whole number' if types == (int,) else types[0].__name__}, "
                          f"not {type(value).__name__}")
    if any(not isinstance(t, str) for t in meta["tokens"]):
        raise MMError(f"{path}: capture field 'tokens' should be a list of strings")
    if meta["layer"] < 0 or meta["head"] < 0:
        raise MMError(f"{path}: capture field 'layer' and 'head' must be >= 0")
    if not isinstance(meta.get("info") or {}, dict):
        raise MMError(f"{path}: capture field 'info' should be a table")


def check_shapes(arrays: dict, n_tokens: int, where: str = "capture"):
    """Every array the size the expression needs: T x d input, d x hd weights, ..."""
    t = n_tokens
    d = arrays["input"].shape[-1] if arrays["input"].ndim == 2 else -1
    hd = arrays["wQ"].shape[-1] if arrays["wQ"].ndim == 2 else -1
    expected = dict(input=(t, d), wQ=(d, hd), wK=(d, hd), wV=(d, hd), bQ=(hd,), bK=(hd,),
                    bV=(hd,), wO=(hd, d), bO=(d,), Q=(t, hd), K=(t, hd), V=(t, hd),
                    attn=(t, t), head_out=(t, hd), out=(t, d))
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise MMError(f"{where}: '{name}' has shape {list(arrays[name].shape)}, expected "
                          f"{list(shape)} for {t} tokens")


def attention_stats(attn: np.ndarray) -> dict[str, float]:
    """What kind of head this is, in four numbers over rows 1..T-1 (row 0 of a causal head has
    one choice): mean row entropy in nats, and the mean weight on the previous token, on the
    token itself and on the first token (an "attention sink")."""
    rows = attn[1:]
    entropy = -(rows * np.log(np.clip(rows, 1e-30, None))).sum(-1)
    return dict(mean_entropy=float(entropy.mean()),
                previous_token=float(np.diagonal(attn, -1).mean()),
                self_token=float(np.diagonal(attn)[1:].mean()),
                first_token=float(rows[:, 0].mean()))


# --- capturing -------------------------------------------------------------------------------

def open_model(model: str):
    """A preset name or a path -> an opened checkpoint (weights are read later, lazily)."""
    if model == "smollm2":
        return smollm2.open_packaged()
    if model == "minilm":
        return minilm.open_packaged()
    if model in sources.GPT2_FAMILY:
        return gpt2.open_hf(model)
    path = Path(model).expanduser()
    if not path.exists():
        raise MMError(f"unknown model '{model}': not one of {', '.join(PRESETS)}, and no such "
                      "file or folder")
    kind = outputs.describe(path)
    if kind not in ("a file", "a folder"):
        raise MMError(f"model '{model}' is {kind}, not a weights file or model folder")
    if path.is_file() and path.suffix == ".gguf":
        return smollm2.open_gguf(path, model)
    if path.is_dir() and any(path.glob("*.gguf")) and not any(
            (path / w).exists() for w in sources.WEIGHT_FILES):
        return smollm2.open_gguf(sorted(path.glob("*.gguf"))[0], model)
    if path.is_dir() and _model_type(path) == "bert":
        return minilm.open_folder(path, model)
    return gpt2.open_path(path, model)


def _model_type(folder: Path):
    try:
        return file_headers.json_file(folder / "config.json", "model config").get("model_type")
    except (MMError, AttributeError):
        return None


def check_ranges(ckpt, model: str, layer, head, tokens) -> None:
    """Layer, head and tokens within what the opened model has (before any forward pass)."""
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
            or not 0 <= layer < ckpt.n_layer:
        raise MMError(f"layer {layer} out of range: {model} has {ckpt.n_layer} layers "
                      f"(0-{ckpt.n_layer - 1})")
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)) \
            or not 0 <= head < ckpt.n_head:
        raise MMError(f"head {head} out of range: {model} has {ckpt.n_head} heads per layer "
                      f"(0-{ckpt.n_head - 1})")
    if isinstance(tokens, bool) or not isinstance(tokens, (int, np.integer)) or tokens < 2:
        raise MMError(f"tokens {tokens} is too few: at least 2 are needed")
    if tokens > ckpt.max_tokens:
        raise MMError(f"tokens {tokens} over the limit: {model} reads at most "
                      f"{ckpt.max_tokens} tokens")


def capture_head(model: str, layer: int, head: int, text: str | None = None, tokens: int = 256,
                 *, backend: str = "auto", progress=None, exact_tokens: bool = False) -> Capture:
    """Run `model` over `text` (our bundled text if None), truncated to `tokens` tokens, and
    capture head `head` of layer `layer`. backend 'auto' is numpy (complete, and what a stock
    Blender has); 'torch' runs an independently written torch forward pass instead.
    With exact_tokens, a text shorter than `tokens` is an error instead of a shorter capture."""
    def report(fraction, message):
        if progress is not None:
            progress(float(min(max(fraction, 0.0), 1.0)), message)

    if backend not in BACKENDS:
        raise MMError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}")
    started = time.perf_counter()
    report(0.0, f"opening {model}")
    ckpt = open_model(model)
    check_ranges(ckpt, model, layer, head, tokens)
    if text is None:
        text = sources.default_text()
    if not isinstance(text, str):
        raise MMError(f"text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise MMError("text is empty: give some words to run the model over")
    ids, strings = ckpt.encode(text, tokens)
    if len(ids) < 2:
        raise MMError(f"text is too short: it gives {len(ids)} token{'s' * (len(ids) != 1)}, "
                      "at least 2 are needed")
    if exact_tokens and len(ids) < tokens:
        raise MMError(f"text is too short: it gives {len(ids)} tokens, fewer than the "
                      f"{tokens} asked for")
    if backend == "auto":
        # numpy: measured as fast as torch on CPU or faster (torch's OpenMP threads stall on
        # busy 2-core machines), with no 2-3 s torch import; the two agree to ~2e-5
        backend = "numpy"
    if backend == "torch":
        from .checkpoint_files import import_torch
        import_torch("the torch backend", remedy="use the numpy backend")
        arrays = ckpt.capture_torch(ids, int(layer), int(head), report)
    else:
        arrays = ckpt.capture_numpy(ids, int(layer), int(head), report)
    arrays = {k: np.ascontiguousarray(arrays[k], dtype=np.float32) for k in ARRAYS}
    check_shapes(arrays, len(ids), where=f"{model} layer {layer} head {head}")
    info = dict(weights=str(ckpt.path), n_layer=ckpt.n_layer, n_head=ckpt.n_head,
                n_kv_head=ckpt.n_kv_head, kv_head=int(head) * ckpt.n_kv_head // ckpt.n_head,
                d_model=ckpt.d_model, head_dim=ckpt.head_dim, token_ids=[int(i) for i in ids],
                backend=backend, seconds=round(time.perf_counter() - started, 3))
    report(1.0, "done")
    return Capture(model=model, layer=int(layer), head=int(head), causal=ckpt.causal, text=text,
                   tokens=strings, info=info, **arrays)


def write_capture(model: str, layer: int, head: int, text_file=None, tokens: int = 256,
                  out_path="capture.npz", progress=None, *, backend: str = "auto",
                  exact_tokens: bool = False) -> Capture:
    """The CLI door: read the text file (our bundled text if None), capture, save to out_path."""
    text = None
    if text_file is not None:
        kind = outputs.describe(Path(text_file))
        if kind and kind != "a file":   # a FIFO would never end
            raise MMError(f"text file {text_file} is {kind}, not a text file")
        try:
            text = Path(text_file).read_text(encoding="utf-8")
        except OSError as e:
            raise MMError(f"cannot read text file {text_file}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise MMError(f"text file {text_file} is not UTF-8 text") from None
    capture = capture_head(model, layer, head, text, tokens, backend=backend, progress=progress,
                           exact_tokens=exact_tokens)
    capture.save(out_path)
    return capture
