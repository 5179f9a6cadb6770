"""Headers of data files, checked before they are trusted: a safetensors JSON header (nesting,
shapes made of whole numbers whose product fits), .npy and .npz array headers (shape and type
read without loading the data). Shared by the file initialiser and the weight readers."""
from __future__ import annotations

import json
import re
import zipfile
from typing import Any, BinaryIO

import numpy as np

from ..errors import MMError

MAX_JSON_DEPTH = 16           # a safetensors header is 3 deep
MAX_DIMS = 8
MAX_ELEMENTS = 1 << 40        # more than any file we could read
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(raw: bytes) -> int:
    """How deeply JSON text nests ([ and { outside strings), counted without recursion."""
    skeleton = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    step = (np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64)
            - np.isin(skeleton, (ord("]"), ord("}"))))
    return int(np.cumsum(step).max(initial=0))


# TOML strings (multi-line, basic, literal) and comments, which may hold any bracket
_TOML_SKIP = re.compile(rb'"""[\s\S]*?"""|' rb"'''[\s\S]*?'''|"
                        rb'"(?:[^"\\\n]|\\.)*"|' rb"'[^'\n]*'|#[^\n]*")
MAX_TOML_DEPTH = 32   # a preset nests 3 deep


def toml_depth(raw: bytes) -> int:
    """How deeply TOML text nests arrays and inline tables, counted without recursion."""
    return json_depth(_TOML_SKIP.sub(b"", raw))


def json_file(path, what: str, max_depth: int = 32):
    """A small JSON file of a model (config, tokenizer), its nesting checked before
    json.loads recurses. MMError names the file, never its contents."""
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        raise MMError(f"cannot read {what} {path}: {e.strerror}") from None
    if json_depth(raw) > max_depth:
        raise MMError(f"{what} {path} nests more than {max_depth} levels deep")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MMError(f"{what} {path} is corrupt (not JSON)") from None


def json_header(raw: bytes, what: str) -> dict:
    """A JSON object header; MMError (never RecursionError) for anything else."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise MMError(f"{what}: its header nests more than {MAX_JSON_DEPTH} levels deep")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MMError(f"{what}: its header is not JSON") from None
    if not isinstance(header, dict):
        raise MMError(f"{what}: its header is not a JSON object")
    return header


def dims(value: Any, what: str) -> tuple[int, ...]:
    """A shape from a header: at most MAX_DIMS whole numbers >= 0 whose product fits."""
    if (not isinstance(value, (list, tuple)) or len(value) > MAX_DIMS
            or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0
                   for d in value)):
        raise MMError(f"{what}: its shape is not a list of at most {MAX_DIMS} whole numbers "
                      ">= 0")
    shape = tuple(int(d) for d in value)
    count = 1
    for d in shape:          # Python integers: the product cannot overflow
        count *= d
    if count > MAX_ELEMENTS:
        raise MMError(f"{what}: its shape {list(shape)} claims {count:,} elements, more than "
                      "any file can hold")
    return shape


def safetensors_entry(entry: Any, where: str, dtypes) -> tuple[str, tuple[int, ...], int, int]:
    """(dtype name, shape, begin, end) of one tensor's safetensors header entry, every field
    checked for its type; the caller checks the byte range against the file."""
    if not isinstance(entry, dict):
        raise MMError(f"{where}: its header entry is not a table")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in dtypes:
        raise MMError(f"{where}: dtype {str(dtype)[:20]} is not supported; use "
                      + ", ".join(dtypes))
    shape = dims(entry.get("shape"), where)
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or any(isinstance(o, bool) or not isinstance(o, int) for o in offsets)):
        raise MMError(f"{where}: data_offsets is not two whole numbers")
    return dtype, shape, offsets[0], offsets[1]


def elements(shape: tuple[int, ...]) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def npy_header(f: BinaryIO, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of an .npy stream, leaving it at the data."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception:   # numpy raises several types for a damaged header
        raise MMError(f"{what}: not a valid .npy file") from None
    return dims(shape, what), dtype


def npz_headers(path, what: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every array of an .npz archive: name -> (shape, dtype), from the headers only."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as member:
                    name = info.filename[:-len(".npy")]
                    out[name] = npy_header(member, f"{what}, array '{name}'")
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError):
        raise MMError(f"{what}: not a valid .npz file") from None
    return out
