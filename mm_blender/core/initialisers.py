"""mm's leaf initialisers (ramps, random, masks, formula, CSV over http) plus local files
(.csv, .npy, .npz, .safetensors), each producing a whole h x w float32 matrix with numpy."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from . import file_headers
from . import formula as formula_lang
from ..errors import MMError

INITIALISERS = (
    "rows",
    "cols",
    "row major",
    "col major",
    "pt linear",
    "uniform",
    "gaussian",
    "tril mask",
    "triu mask",
    "eye",
    "diff",
    "url",
    "expr",
    "file",
    "zeros",
    "ones",
)

# As in mm: which inits the min/max rescale and the dropout apply to.
USE_RANGE = ("rows", "cols", "row major", "col major", "uniform", "gaussian")
USE_DROPOUT = USE_RANGE + ("pt linear",)

FILE_SUFFIXES = (".csv", ".txt", ".npy", ".npz", ".safetensors")

URL_TIMEOUT_S = 10.0
URL_MAX_BYTES = 64 * 1024 * 1024
CSV_BYTES_PER_CELL = 64   # a number written out, with room to spare
_URL_CACHE: dict[str, str] = {}  # url -> downloaded text, for this process


def init_values(
    name: str,
    h: int,
    w: int,
    init: str,
    *,
    min: float = -1.0,
    max: float = 1.0,
    dropout: float = 0.0,
    formula: str = "",
    file: str = "",
    tensor: str = "",
    url: str = "",
    seed: int = 0,
    base_dir: str | os.PathLike | None = None,
    allow_network: bool = True,
) -> np.ndarray:
    """The values of leaf `name` (h x w, float32) made by initialiser `init`.

    Random inits draw from np.random.default_rng(seed), values first, then the dropout mask,
    so a seed always gives the same matrix. Rescaling is mm's: `min + max(0, max - min) * f`
    (a max below min collapses to min), applied only to USE_RANGE inits and only when
    (min, max) != (0, 1); dropout zeroes each element of a USE_DROPOUT init with probability
    `dropout`.
    """
    h, w = _size(name, "h", h), _size(name, "w", w)
    if init not in INITIALISERS:
        raise MMError(
            f"leaf '{name}': unknown init {init!r}; valid inits: "
            + ", ".join(f"'{n}'" for n in INITIALISERS)
        )
    lo, hi = _number(name, "min", min), _number(name, "max", max)
    drop = _number(name, "dropout", dropout)
    if not 0.0 <= drop <= 1.0:
        raise MMError(f"leaf '{name}': dropout must be between 0 and 1, got {dropout!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MMError(f"leaf '{name}': seed must be a whole number, got {seed!r}")
    rng = np.random.default_rng(int(seed) % (1 << 128))

    values = _base_values(
        name, h, w, init, rng, formula, file, tensor, url, base_dir, allow_network
    )

    with np.errstate(all="ignore"):
        values = np.asarray(values, dtype=np.float64)
        if init in USE_RANGE and (lo != 0.0 or hi != 1.0):
            values = lo + np.maximum(0.0, hi - lo) * values
        if init in USE_DROPOUT and drop > 0.0:
            values = np.where(rng.random((h, w)) > drop, values, 0.0)
        out = np.array(np.broadcast_to(values, (h, w)), dtype=np.float32)
    return out


def _base_values(name, h, w, init, rng, formula, file, tensor, url, base_dir, allow_network):
    """The init's values before rescale and dropout (anything broadcastable to (h, w))."""
    i = np.arange(h, dtype=np.float64)[:, None]
    j = np.arange(w, dtype=np.float64)[None, :]
    if init == "rows":
        return i / (h - 1) if h > 1 else np.zeros((h, w))
    if init == "cols":
        return j / (w - 1) if w > 1 else np.zeros((h, w))
    if init == "row major":
        return (i * w + j) / (h * w - 1) if h * w > 1 else np.zeros((h, w))
    if init == "col major":
        return (j * h + i) / (h * w - 1) if h * w > 1 else np.zeros((h, w))
    if init == "pt linear":
        return (2.0 * rng.random((h, w)) - 1.0) / np.sqrt(w)
    if init == "uniform":
        return rng.random((h, w))
    if init == "gaussian":
        return rng.normal(0.5, 0.5, (h, w))
    if init == "tril mask":
        return (j <= i).astype(np.float64)
    if init == "triu mask":
        return (j >= i).astype(np.float64)
    if init == "eye":
        return (i == j).astype(np.float64)
    if init == "diff":
        return (i == j).astype(np.float64) - (i == j + 1)
    if init == "zeros":
        return np.zeros((h, w))
    if init == "ones":
        return np.ones((h, w))
    if init == "expr":
        if not str(formula).strip():
            raise MMError(f"leaf '{name}' uses init 'expr' but has no formula (e.g. 'i + j')")
        try:
            return formula_lang.evaluate(formula, h, w)
        except MMError as e:
            raise MMError(f"leaf '{name}': {e}") from None
    if init == "url":
        text = _download(name, url, allow_network)
        return _wrap(_parse_csv(text, f"url '{url}' for leaf '{name}'"), h, w)
    if init == "file":
        return _load_file(name, h, w, file, tensor, base_dir)
    raise AssertionError(init)  # INITIALISERS and this function must agree


def _size(name, label, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise MMError(f"leaf '{name}': {label} must be a whole number >= 0, got {n!r}")
    return int(n)


def _number(name, label, x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        raise MMError(f"leaf '{name}': {label} must be a number, got {x!r}") from None


# ---------------------------------------------------------------------------------------------
# CSV (mm's format: one matrix row per line, comma separated, rows may differ in length)

_LINE_BREAK = re.compile(r"\r\n|\n|\r")


def _parse_csv(text: str, source: str):
    """(values padded to a rectangle, length of each row). As in mm a blank cell (or a blank
    line inside the data) reads as 0; trailing blank lines are dropped, not read as a zero row."""
    lines = _LINE_BREAK.split(text)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise MMError(f"{source}: has no data (the CSV text is empty)")
    rows = [line.split(",") for line in lines]
    lengths = np.array([len(r) for r in rows])
    cells = [cell for row in rows for cell in row]
    try:
        # An object array converts with float() in C: faster than numpy's string parser,
        # and like JavaScript's unary + it skips surrounding spaces.
        flat = np.array(cells, dtype=object).astype(np.float64)
    except ValueError:
        cells = np.char.strip(np.array(cells, dtype=str))
        cells[cells == ""] = "0"
        try:
            flat = cells.astype(np.float64)
        except ValueError:
            k = int(np.argmin(np.vectorize(_is_number, otypes=[bool])(cells)))
            r = int(np.searchsorted(np.cumsum(lengths), k, side="right"))
            c = k - int(lengths[:r].sum())
            # the cell itself is not shown: the file may be one that should stay private
            raise MMError(f"{source}: line {r + 1}, column {c + 1} is not a number "
                          "(expected CSV of numbers)") from None
    values = np.zeros((len(rows), int(lengths.max())))
    values[np.arange(values.shape[1])[None, :] < lengths[:, None]] = flat
    return values, lengths


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _wrap(data, h, w):
    """mm's wrap-around read: row = data[i % rows]; value = row[j % len(row)]."""
    values, lengths = data
    r = np.arange(h) % len(lengths)
    c = np.arange(w)[None, :] % lengths[r][:, None]
    return values[r[:, None], c]


# ---------------------------------------------------------------------------------------------
# url


def network_off(what: str, instead: str = "or use a local 'file' init") -> str:
    """The one line for a download refused because the network is off."""
    tail = f", {instead}" if instead else ""
    return (f"{what}: network access is off (on the command line add --allow-network; in "
            f"Blender: Preferences > System > Network > Allow Online Access){tail}")


def _download(name: str, url: str, allow_network: bool) -> str:
    what = f"url '{url}' for leaf '{name}'"
    if not url:
        raise MMError(f"leaf '{name}' uses init 'url' but has no url")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise MMError(f"{what}: only http:// and https:// addresses can be read")
    if not allow_network:
        raise MMError(network_off(what))
    if url in _URL_CACHE:
        return _URL_CACHE[url]
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            body = response.read(URL_MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise MMError(f"{what}: the server answered HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise MMError(f"{what}: could not download ({e.reason})") from None
    except (OSError, ValueError) as e:  # timeouts, resets, malformed addresses
        raise MMError(f"{what}: could not download ({e})") from None
    if len(body) > URL_MAX_BYTES:
        raise MMError(f"{what}: larger than the {URL_MAX_BYTES // (1024 * 1024)} MB limit")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MMError(f"{what}: is not UTF-8 text (expected CSV)") from None
    _URL_CACHE[url] = text
    return text


# ---------------------------------------------------------------------------------------------
# Local files


def _leaf_path(name, file, base_dir):
    if not file:
        raise MMError(f"leaf '{name}' uses init 'file' but has no file")
    what = f"file '{file}' for leaf '{name}'"
    path = os.fspath(file)
    if path.startswith("//"):  # Blender's "relative to the .blend" spelling
        path = path[2:]
    path = os.path.expanduser(path)
    if base_dir is not None and not os.path.isabs(path):
        path = os.path.join(os.fspath(base_dir), path)
    if not os.path.isfile(path):
        from ..outputs import describe
        kind = describe(path)
        if kind:
            raise MMError(f"{what}: {os.path.abspath(path)} is {kind}, not a data file")
        raise MMError(f"{what}: not found (looked for {os.path.abspath(path)})")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FILE_SUFFIXES:
        raise MMError(f"{what}: unsupported file type {suffix or '(none)'!r}; use one of "
                      + ", ".join(FILE_SUFFIXES))
    return path, what, suffix


def check_leaf_file(name, h, w, file, tensor="", base_dir=None) -> None:
    """Before any work: the file exists, and an array file's header (read without its data)
    says the shape and type the leaf needs."""
    path, what, suffix = _leaf_path(name, file, base_dir)
    if suffix in (".csv", ".txt"):   # read whole: its size is its header
        limit = max(URL_MAX_BYTES, CSV_BYTES_PER_CELL * h * w)
        if os.path.getsize(path) > limit:
            raise MMError(f"{what}: {os.path.getsize(path):,} bytes of CSV, more than a "
                          f"{h} x {w} leaf can use (at most {limit:,})")
        return
    try:
        if suffix == ".npy":
            with open(path, "rb") as f:
                shape, dtype = file_headers.npy_header(f, what)
            label = None
        elif suffix == ".npz":
            headers = file_headers.npz_headers(path, what)
            label = _choose(list(headers), tensor, what, "array")
            shape, dtype = headers[label]
        else:
            label, entry = _safetensors_entry(path, tensor, what)
            shape, dtype = entry[1], np.dtype(np.float32)
    except OSError as e:
        raise MMError(f"{what}: cannot be read ({e.strerror or e})") from None
    _check_header(shape, dtype, h, w, what, label)


def _check_header(shape, dtype, h, w, what, label):
    tensor = f", tensor '{label}'" if label else ""
    if dtype.kind not in "biuf":
        raise MMError(f"{what}{tensor}: holds {dtype} values; only real numbers can be drawn")
    if len(shape) == 1:
        shape = (1,) + tuple(shape)
    if len(shape) != 2:
        raise MMError(f"{what}{tensor}: has {len(shape)} dimensions {tuple(shape)}; "
                      "only 1-D or 2-D arrays can be a leaf")
    if tuple(shape) != (h, w):
        raise MMError(f"{what}{tensor}: has shape {shape[0]} x {shape[1]} but the "
                      f"leaf is {h} x {w}")


def _load_file(name, h, w, file, tensor, base_dir):
    check_leaf_file(name, h, w, file, tensor, base_dir)   # headers first: no big surprises
    path, what, suffix = _leaf_path(name, file, base_dir)
    try:
        if suffix in (".csv", ".txt"):
            with open(path, encoding="utf-8-sig") as f:
                return _wrap(_parse_csv(f.read(), what), h, w)
        if suffix == ".npy":
            array, label = _read_npy(path, what), None
        elif suffix == ".npz":
            array, label = _read_npz(path, tensor, what)
        else:
            array, label = _read_safetensors(path, tensor, what)
    except UnicodeDecodeError:
        raise MMError(f"{what}: is not UTF-8 text (expected CSV)") from None
    except OSError as e:
        raise MMError(f"{what}: cannot be read ({e.strerror or e})") from None
    return _check_array(array, h, w, what, label)


def _check_array(array, h, w, what, label):
    tensor = f", tensor '{label}'" if label else ""
    if array.dtype.kind not in "biuf":
        raise MMError(f"{what}{tensor}: holds {array.dtype} values; only real numbers can be drawn")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise MMError(f"{what}{tensor}: has {array.ndim} dimensions {tuple(array.shape)}; "
                      "only 1-D or 2-D arrays can be a leaf")
    if array.shape != (h, w):
        raise MMError(f"{what}{tensor}: has shape {array.shape[0]} x {array.shape[1]} but the "
                      f"leaf is {h} x {w}")
    return array.astype(np.float64)


def _read_npy(path, what):
    try:
        with open(path, "rb") as handle:  # our handle, so a failed load cannot leak it
            return np.load(handle, allow_pickle=False)
    except PermissionError:
        raise
    except Exception:  # numpy raises several types for a corrupt header or pickled data
        raise MMError(f"{what}: not a valid .npy file (or it holds Python objects)") from None


def _read_npz(path, tensor, what):
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            names = list(archive.files)
            chosen = _choose(names, tensor, what, "array")
            return archive[chosen], chosen
    except (MMError, PermissionError):
        raise
    except Exception:
        raise MMError(f"{what}: not a valid .npz file (or it holds Python objects)") from None


def _choose(names, tensor, what, kind):
    listed = ", ".join(f"'{n}'" for n in names[:20])
    if len(names) > 20:
        listed += f", ... ({len(names)} in all)"
    if tensor:
        if tensor not in names:
            raise MMError(f"{what}: has no {kind} '{tensor}'; it has {listed or 'none'}")
        return tensor
    if len(names) != 1:
        if not names:
            raise MMError(f"{what}: holds no {kind}s")
        raise MMError(f"{what}: holds {len(names)} {kind}s, so name one as the tensor: {listed}")
    return names[0]


_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bf16",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


def _safetensors_entry(path, tensor, what):
    """(name, (dtype code, shape, begin, end, data start)) of the chosen tensor, every field
    of its header entry checked against the file."""
    bad = f"{what}: not a valid .safetensors file"
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise MMError(f"{bad} (shorter than its 8-byte header size)")
        header_len = int.from_bytes(head, "little")
        if header_len > min(size - 8, 100 * 1024 * 1024):
            raise MMError(f"{bad} (header size {header_len} does not fit the file)")
        header = file_headers.json_header(f.read(header_len), bad)
    names = [n for n in header if n != "__metadata__"]
    chosen = _choose(names, tensor, what, "tensor")
    where = f"{what}, tensor '{chosen}'"
    dtype_name, shape, begin, end = file_headers.safetensors_entry(
        header[chosen], where, _SAFETENSORS_DTYPES)
    code = _SAFETENSORS_DTYPES[dtype_name]
    itemsize = 2 if code == "bf16" else np.dtype(code).itemsize
    data_start = 8 + header_len
    if not (0 <= begin <= end and end - begin == file_headers.elements(shape) * itemsize
            and data_start + end <= size):
        raise MMError(f"{bad}: tensor '{chosen}' offsets do not match its shape "
                      f"{list(shape)}")
    return chosen, (code, shape, begin, end, data_start)


def _read_safetensors(path, tensor, what):
    """A small reader of the safetensors layout (8-byte little-endian header size, a JSON
    header, then raw little-endian data) that reads only the chosen tensor's bytes."""
    chosen, (code, shape, begin, end, data_start) = _safetensors_entry(path, tensor, what)
    with open(path, "rb") as f:
        f.seek(data_start + begin)
        raw = f.read(end - begin)
    if code == "bf16":
        # bfloat16 is the top half of a float32.
        array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        array = np.frombuffer(raw, dtype=code)
    return array.reshape(shape), chosen
