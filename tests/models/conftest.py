"""Shared helpers for the model tests: a safetensors writer independent of our reader."""

import json
import struct

import numpy as np
import pytest


def write_safetensors(path, tensors: dict, dtypes: dict | None = None):
    """A minimal safetensors writer, independent of the reader under test."""
    dtypes = dtypes or {}
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        kind = dtypes.get(name, "F32")
        if kind == "BF16":
            raw = (np.asarray(array, np.float32).view(np.uint32) >> 16).astype(np.uint16)
        else:
            raw = np.asarray(array, {"F32": np.float32, "F16": np.float16, "I64": np.int64}[kind])
        blob = raw.tobytes()
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


@pytest.fixture(name="write_safetensors")
def write_safetensors_fixture():
    return write_safetensors


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On 2-core machines torch's OpenMP threads and numpy's BLAS threads fight (a 2-thread
    torch add took 8 ms instead of 0.08 ms here): run torch single-threaded in these tests."""
    import sys
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:
            yield
            return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
