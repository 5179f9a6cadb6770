"""Reading a GGUF file (llama.cpp's format): metadata, the tensor table, and tensors dequantised
to float32 on demand. Our own reader (stdlib mmap + numpy): it opens SmolLM2 in ~0.1 s where
gguf.GGUFReader takes ~5 s, and it works in a stock Blender. Quant types we do not decode
ourselves fall back to the `gguf` package's dequantize when it is installed."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np

from ..errors import MMError

# GGUF metadata value types
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_ARRAY_NESTING = 4      # llama.cpp writes flat arrays; nested ones are at most 2 deep
MAX_ALIGNMENT = 1 << 16

# ggml tensor types: name, elements per block, bytes per block
GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
              6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34),
              10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
              13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2)}


class GGUFFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = self.path.stat().st_size
                if size < 24:
                    raise MMError(f"{self.path}: not a GGUF file (only {size} bytes)")
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                    self._parse(buf, size)
        except OSError as e:
            raise MMError(f"cannot read weights file {self.path}: {e.strerror}") from None
        except (struct.error, UnicodeDecodeError, IndexError, ValueError):
            raise MMError(f"{self.path}: corrupt or truncated GGUF header") from None

    def _parse(self, buf, size):
        if buf[:4] != b"GGUF":
            raise MMError(f"{self.path}: not a GGUF file (bad magic {bytes(buf[:4])!r})")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version not in (2, 3):
            raise MMError(f"{self.path}: GGUF version {version} is not supported (2 or 3 are)")
        pos = 24

        def string(pos):
            (n,) = struct.unpack_from("<Q", buf, pos)
            if pos + 8 + n > size:
                raise ValueError
            return buf[pos + 8:pos + 8 + n].decode("utf-8", errors="replace"), pos + 8 + n

        def value(kind, pos, depth=0):
            if kind in _SCALARS:
                fmt = _SCALARS[kind]
                return struct.unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)
            if kind == _STRING:
                return string(pos)
            if kind == _ARRAY:
                if depth >= MAX_ARRAY_NESTING:
                    raise MMError(f"{self.path}: GGUF metadata arrays nest more than "
                                  f"{MAX_ARRAY_NESTING} deep")
                sub, n = struct.unpack_from("<IQ", buf, pos)
                pos += 12
                if sub in _SCALARS:  # numeric arrays in one numpy read
                    dt = np.dtype(_SCALARS[sub])
                    arr = np.frombuffer(buf, dtype=dt, count=n, offset=pos).copy()
                    return arr, pos + n * dt.itemsize
                items = []
                if n > size:   # every item takes at least a byte
                    raise ValueError
                for _ in range(n):
                    item, pos = value(sub, pos, depth + 1)
                    items.append(item)
                return items, pos
            raise ValueError(f"unknown GGUF value type {kind}")

        self.metadata = {}
        for _ in range(n_kv):
            key, pos = string(pos)
            (kind,) = struct.unpack_from("<I", buf, pos)
            self.metadata[key], pos = value(kind, pos + 4)

        self.tensors = {}
        for _ in range(n_tensors):
            name, pos = string(pos)
            (n_dims,) = struct.unpack_from("<I", buf, pos)
            if not 1 <= n_dims <= 4:   # GGML_MAX_DIMS
                raise MMError(f"{self.path}: tensor '{name[:80]}' has {n_dims} dimensions "
                              "(GGUF tensors have 1 to 4)")
            dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
            kind, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
            pos += 4 + 8 * n_dims + 12
            # GGUF lists dims fastest-first; numpy wants them the other way round
            self.tensors[name] = (tuple(reversed(dims)), kind, offset)
        align = self.metadata.get("general.alignment", 32)
        if (isinstance(align, (bool, list, str, np.ndarray)) or int(align) != align
                or not 1 <= align <= MAX_ALIGNMENT):
            raise MMError(f"{self.path}: GGUF general.alignment must be a whole number from 1 "
                          f"to {MAX_ALIGNMENT}")
        align = int(align)
        self._data_start = (pos + align - 1) // align * align
        for name, (shape, kind, offset) in self.tensors.items():
            if self._data_start + offset + self._nbytes(name, shape, kind) > size:
                raise MMError(f"{self.path}: truncated file, tensor '{name}' ends past the end")

    def _nbytes(self, name, shape, kind):
        if kind not in GGML_TYPES:
            raise MMError(f"{self.path}: tensor '{name}' has unknown ggml type {kind}")
        _, block, block_bytes = GGML_TYPES[kind]
        if shape[-1] % block:
            raise MMError(f"{self.path}: tensor '{name}' rows are not whole quant blocks")
        count = 1
        for d in shape:          # Python integers: a forged shape cannot overflow
            count *= int(d)
        return count // block * block_bytes

    def field(self, key: str):
        try:
            return self.metadata[key]
        except KeyError:
            raise MMError(f"{self.path}: metadata key '{key}' is missing") from None

    def type_name(self, name: str) -> str:
        return GGML_TYPES[self._tensor(name)[1]][0]

    def shape(self, name: str) -> tuple[int, ...]:
        return self._tensor(name)[0]

    def _tensor(self, name):
        try:
            return self.tensors[name]
        except KeyError:
            raise MMError(f"{self.path}: tensor '{name}' is missing") from None

    def raw(self, name: str, rows=None) -> np.ndarray:
        """The stored bytes of a tensor as a (rows, bytes per row) uint8 array."""
        shape, kind, offset = self._tensor(name)
        n_rows = int(np.prod(shape[:-1], dtype=np.int64))
        row_bytes = self._nbytes(name, shape, kind) // max(n_rows, 1)
        mm = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self._data_start + offset,
                       shape=(n_rows, row_bytes))
        data = np.array(mm if rows is None else mm[np.asarray(rows)])
        del mm
        return data

    def get(self, name: str, rows=None) -> np.ndarray:
        """A tensor dequantised to float32, shaped as numpy sees it (rows of the first axis only,
        if given; for a 2-D weight that is its output rows)."""
        shape, kind, _ = self._tensor(name)
        data = dequantize(self.raw(name, rows), kind, self.path, name)
        out_shape = shape if rows is None else (len(rows),) + shape[1:]
        return data.reshape(out_shape)


def dequantize(raw: np.ndarray, kind: int, path="", name="") -> np.ndarray:
    """Rows of stored bytes -> float32 rows, vectorised over all blocks."""
    type_name, block, block_bytes = GGML_TYPES[kind]
    n_rows = raw.shape[0]
    if type_name == "F32":
        return raw.view(np.float32).reshape(n_rows, -1).copy()
    if type_name == "F16":
        return raw.view(np.float16).astype(np.float32).reshape(n_rows, -1)
    if type_name == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(n_rows, -1)
    blocks = raw.reshape(-1, block_bytes)
    if type_name in ("Q4_0", "Q4_1", "Q8_0"):
        d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        if type_name == "Q8_0":
            q = blocks[:, 2:].view(np.int8).astype(np.float32)
            return (q * d).reshape(n_rows, -1)
        qs = blocks[:, 4:] if type_name == "Q4_1" else blocks[:, 2:]
        # low nibbles are elements 0..15 of a block, high nibbles 16..31
        q = np.empty((len(blocks), 32), np.float32)
        np.bitwise_and(qs, 0x0F, out=q[:, :16], casting="unsafe")
        np.right_shift(qs, 4, out=q[:, 16:], casting="unsafe")
        if type_name == "Q4_0":
            q -= 8.0
            q *= d
        else:
            q *= d
            q += blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
        return q.reshape(n_rows, -1)
    try:
        import gguf
    except ImportError:
        raise MMError(f"{path}: tensor '{name}' is stored as {type_name}; reading it needs the "
                      "`gguf` package (pip install gguf)") from None
    return gguf.quants.dequantize(raw, gguf.GGMLQuantizationType(kind)).reshape(n_rows, -1)
