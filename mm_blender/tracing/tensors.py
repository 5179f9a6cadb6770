"""torch tensors seen as numpy matrices: values, which tensors an argument holds, and the
2-D matrix of a batch at one batch index and head. torch is imported inside functions."""
from __future__ import annotations

import numpy as np


def as_numpy(t) -> np.ndarray:
    import torch
    with torch._C.DisableTorchFunction():
        return t.detach().to("cpu", torch.float32).numpy()


def is_float(t) -> bool:
    import torch
    return isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() >= 1


def flat_tensors(obj, out, depth=0):
    import torch
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)) and depth < 2:
        for o in obj:
            flat_tensors(o, out, depth + 1)
    elif isinstance(obj, dict) and depth < 2:
        for o in obj.values():
            flat_tensors(o, out, depth + 1)
    return out


def as_matrix(a: np.ndarray) -> np.ndarray:
    return a.reshape(1, -1) if a.ndim == 1 else a


def pick(a: np.ndarray, sel: tuple, lead: tuple) -> np.ndarray:
    """The 2-D matrix of `a` (leading dims broadcast against `lead`) at leading index `sel`."""
    if a.ndim <= 2:
        return as_matrix(a)
    own = a.shape[:-2]
    offset = len(lead) - len(own)
    idx = []
    for i, size in enumerate(own):
        out_size, s = lead[offset + i], sel[offset + i]
        idx.append(0 if size == 1 else s * size // out_size)   # grouped heads share a key
    return a[tuple(idx)]
