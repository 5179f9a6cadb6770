"""Naming: the names a traced matrix can be known by, strongest first: the function's own
variable names (read from its frames as they return), module paths (forward hooks), views
of a named tensor (proj[64:128], w.T), and readable roles otherwise."""
from __future__ import annotations

import os
import sys

import numpy as np

from .tensors import as_numpy, flat_tensors, is_float

_TORCH_DIR = None


def _user_frame(filename: str) -> bool:
    global _TORCH_DIR
    if _TORCH_DIR is None:
        import torch
        _TORCH_DIR = os.path.dirname(torch.__file__)
    here = os.path.dirname(__file__)   # our own recording code; the models are fair game
    return not (filename.startswith(_TORCH_DIR) or filename.startswith(here)
                or filename.startswith("<frozen"))


class Namer:
    """Names by tensor id; `keep` holds the tensors so their ids stay theirs."""

    def __init__(self, fn, keep: list):
        self.fn = fn
        self.keep = keep
        self.var_names: dict[int, str] = {}
        self.param_names: dict[int, str] = {}
        self.module_paths: dict[int, str] = {}
        self.module_outputs: dict[int, str] = {}
        self.derived: dict[int, tuple] = {}   # id -> (id of the tensor it views, suffix)

    def derive_name(self, name, args, out) -> None:
        """A view of a tensor (proj[64:128], w.T) is named after it, if nothing better."""
        import torch
        if not args or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
            return
        if name == "__getitem__" and len(args) > 1:
            suffix = _index_text(args[1])
        elif name in ("t", "T", "mT", "transpose", "adjoint", "swapaxes"):
            dims = [d % out.dim() for d in args[1:3] if isinstance(d, int)] if out.dim() else []
            # a matrix transpose is x_t; swapping batch and sequence keeps the name
            suffix = "_t" if out.dim() <= 2 or not dims or sorted(dims) == [out.dim() - 2,
                                                                            out.dim() - 1] \
                else ""
        elif name in _SAME_NAME:
            suffix = ""
        else:
            return
        if suffix is not None:
            self.keep += [args[0], out]
            self.derived.setdefault(id(out), (id(args[0]), suffix))

    def see_module(self, module, top_level: bool) -> None:
        """Paths for a module's submodules, parameters and buffers, first time it runs."""
        if id(module) in self.module_paths:
            return
        if top_level:               # a top-level module: its variable name is its path
            prefix = "" if module is self.fn or module is getattr(self.fn, "__self__", None) \
                else self._variable_of(module) or type(module).__name__.lower()
        else:                       # called without its parent module: its own name
            prefix = self._variable_of(module) or type(module).__name__.lower()
        label = self._variable_of(module) or type(module).__name__.lower()

        def path(name):
            # a bare index (an nn.Sequential's "0") reads better after its container's name
            if not prefix and name[:1].isdigit():
                return f"{label}.{name}"
            return ".".join(p for p in (prefix, name) if p)

        for name, sub in module.named_modules():
            self.module_paths.setdefault(id(sub), path(name))
        for pname, param in module.named_parameters():
            self.param_names.setdefault(id(param), path(pname))
        for bname, buf in module.named_buffers():
            self.param_names.setdefault(id(buf), path(bname))

    def name_arguments(self, args, kwargs) -> None:
        """The function's parameter names name the tensors it is given."""
        import inspect
        import torch
        target = self.fn.forward if isinstance(self.fn, torch.nn.Module) else self.fn
        try:
            bound = inspect.signature(target).bind(*args, **kwargs)
        except (TypeError, ValueError):
            return
        for name, value in bound.arguments.items():
            for t in flat_tensors(value, []):
                self.keep.append(t)
                self.var_names.setdefault(id(t), name)

    def _variable_of(self, obj) -> str:
        frame = sys._getframe(1)
        while frame is not None:
            if _user_frame(frame.f_code.co_filename):
                for k, v in frame.f_locals.items():
                    if v is obj:
                        return k
            frame = frame.f_back
        for k, v in getattr(self.fn, "__globals__", {}).items():
            if v is obj:
                return k
        return ""

    def _derived_name(self, tid) -> str:
        suffix = ""
        for _ in range(20):
            if tid not in self.derived:
                return ""
            tid, more = self.derived[tid]
            suffix = more + suffix
            name = self.var_names.get(tid) or self.param_names.get(tid)
            if name:
                if suffix.startswith("_t") and name.endswith("_t"):
                    return name[:-2] + suffix[2:]
                return name + suffix
        return ""

    def _named_tensors(self):
        by_id = {id(t): t for t in self.keep}
        for tid, name in self.var_names.items():
            if tid in by_id:
                yield name, by_id[tid]

    def profile(self, frame, event, arg):
        """On each return from the user's code, the names its tensors were bound to."""
        import torch
        if (event != "return" or frame.f_code.co_name.startswith("<")   # comprehensions
                or not _user_frame(frame.f_code.co_filename)):
            return
        for name, value in frame.f_locals.items():
            if name.startswith("_"):
                continue
            if isinstance(value, torch.Tensor):
                self.keep.append(value)
                self.var_names.setdefault(id(value), name)
            elif isinstance(value, dict) and len(value) < 256:   # weights in a dict: w[q]
                for key, item in value.items():
                    if isinstance(item, torch.Tensor) and isinstance(key, str):
                        self.keep.append(item)
                        self.var_names.setdefault(id(item), f"{name}.{key}")

    def finish(self, nodes, leaves) -> None:
        """Give every node the names its tensors were known by (see graph.name_of)."""
        # a leaf read through a view (x.transpose(0, 1) inside a module) is named after
        # the variable holding the same values
        named: dict[tuple, list] = {}
        for name, t in self._named_tensors():
            if is_float(t) and t.dim() >= 2 and t.numel() <= 1 << 24:
                rows = as_numpy(t).reshape(-1, t.shape[-1])
                named.setdefault(rows.shape, []).append((name, rows))
        for node in leaves:
            if max((p for p, _ in node.names), default=-1) >= 2.8:
                continue
            for name, rows in named.get(node.value.shape, ()):
                if np.array_equal(rows, node.value, equal_nan=True):
                    node.hint(name, 2.8)
                    break
        seen = set()
        stack = list(nodes) + list(leaves)
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            for tid, suffix in node._memo.get("tensors", ()):
                if tid in self.var_names:
                    node.hint(self.var_names[tid] + suffix, 3)
                if tid in self.param_names:
                    node.hint(self.param_names[tid] + suffix, 2)
                if tid in self.module_outputs:
                    node.hint(self.module_outputs[tid] + suffix, 1.5)
                derived = self._derived_name(tid)
                if derived:
                    node.hint(derived + suffix, 2.2)
            for child in (node.left, node.right):
                if child is not None:
                    stack.append(child)
            if node.source is not None:
                stack.append(node.source[0])


_SAME_NAME = ("view", "reshape", "contiguous", "unsqueeze", "squeeze", "permute", "flatten",
              "unflatten", "clone", "detach", "to", "float", "expand", "narrow")


def _index_text(index) -> str | None:
    """proj[64:128, :] -> "[64-128]" (a name may hold brackets and dashes, not colons)."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, slice) and p.step in (None, 1):
            if p.start in (None, 0) and p.stop is None:
                out.append("")
                continue
            out.append(f"{p.start or 0}-{'' if p.stop is None else p.stop}")
        elif isinstance(p, int):
            out.append(str(p))
        else:
            return None
    while out and out[-1] == "":
        out.pop()
    return "".join(f"[{p}]" for p in out) if out else ""
