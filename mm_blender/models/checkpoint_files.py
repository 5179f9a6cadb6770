"""Reading tensors from checkpoint files: our own safetensors reader (header + numpy reads, so a
stock Blender without the safetensors package works, and only the tensors asked for are read)
and PyTorch pickles (.bin / nanoGPT ckpt.pt), which need torch."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..core import file_headers
from ..errors import MMError

_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsFile:
    """A .safetensors file: the header is read and checked at once, tensors on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise MMError(f"{self.path}: not a safetensors file (shorter than 8 bytes)")
                (n,) = struct.unpack("<Q", head)
                if n > _MAX_HEADER or 8 + n > size:
                    raise MMError(
                        f"{self.path}: corrupt or truncated safetensors file (header claims "
                        f"{n} bytes, file has {size})")
                raw = f.read(n)
        except OSError as e:
            raise MMError(f"cannot read weights file {self.path}: {e.strerror}") from None
        header = file_headers.json_header(raw, f"{self.path}: corrupt safetensors header")
        self.metadata = header.pop("__metadata__", None) or {}
        self._data_start = 8 + n
        self._entries = {}
        for name, entry in header.items():
            kind, shape, start, end = file_headers.safetensors_entry(
                entry, f"{self.path}: tensor '{name[:80]}'", _SAFETENSORS_DTYPES)
            dtype = _SAFETENSORS_DTYPES[kind]
            count = file_headers.elements(shape)
            if end - start != count * np.dtype(dtype).itemsize or start < 0:
                raise MMError(f"{self.path}: tensor '{name}' byte range does not match its shape")
            if self._data_start + end > size:
                raise MMError(
                    f"{self.path}: truncated file, tensor '{name}' ends past the end of the file")
            self._entries[name] = (kind, dtype, shape, start, count)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name)[2]

    def _entry(self, name):
        try:
            return self._entries[name]
        except KeyError:
            raise MMError(f"{self.path}: tensor '{name}' is missing") from None

    def get(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """The tensor as float32 (only `rows` of its first axis, if given)."""
        kind, dtype, shape, start, count = self._entry(name)
        offset = self._data_start + start
        if rows is not None:
            row = int(np.prod(shape[1:], dtype=np.int64))
            mm = np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=(shape[0], row))
            data = np.array(mm[np.asarray(rows)])
            del mm
            shape = (len(rows),) + shape[1:]
        else:
            data = np.fromfile(self.path, dtype=dtype, count=count, offset=offset) \
                if count else np.zeros(0, dtype)
            if data.size != count:
                raise MMError(f"{self.path}: truncated data for tensor '{name}'")
        if kind == "BF16":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        return data.astype(np.float32, copy=False).reshape(shape)


def import_torch(why: str, remedy: str = "convert the weights to .safetensors"):
    try:
        import torch
    except ImportError:
        raise MMError(f"{why} needs PyTorch, which is not installed here (a stock Blender has "
                      f"no torch): install torch into Blender's Python, or {remedy}") from None
    return torch


def load_torch_file(path: str | Path) -> dict:
    """A PyTorch pickle (.bin state dict or nanoGPT ckpt.pt), loaded on the CPU without running
    arbitrary pickled code."""
    path = Path(path)
    torch = import_torch(f"loading {path.name}")
    if not path.is_file():
        raise MMError(f"weights file {path} does not exist")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        raise MMError(f"{path}: cannot load as a PyTorch checkpoint ({type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''})") from None


class StateDict:
    """A loaded PyTorch state dict behind the same get/shape/names face as SafetensorsFile."""

    def __init__(self, tensors: dict, path: Path):
        self.path = Path(path)
        self._tensors = {k: v for k, v in tensors.items() if hasattr(v, "shape")}

    def names(self) -> list[str]:
        return list(self._tensors)

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._tensor(name).shape)

    def _tensor(self, name):
        try:
            return self._tensors[name]
        except KeyError:
            raise MMError(f"{self.path}: tensor '{name}' is missing") from None

    def get(self, name: str, rows=None) -> np.ndarray:
        t = self._tensor(name)
        if rows is not None:
            t = t[list(rows)]
        return t.detach().float().numpy().copy()
