"""The torch function mode a trace runs under: every op runs as usual, then the recorder
hears what it was; module hooks and a profile function collect names meanwhile."""
from __future__ import annotations

import sys

from ..errors import MMError
from .record import Recorder
from .tensors import flat_tensors


def require_torch():
    try:
        import torch
    except ImportError:
        raise MMError("trace runs PyTorch code and needs torch, which is not installed here "
                      "(a stock Blender has none): install torch into this Python, or trace "
                      "elsewhere and open the preset it writes") from None
    return torch


_MATMULS = ("matmul", "__matmul__", "mm", "bmm")


def make_mode(recorder: Recorder):
    """A TorchFunctionMode that runs every op and tells the recorder about it."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    linear, sdpa, mha = F.linear, F.scaled_dot_product_attention, F.multi_head_attention_forward

    class TraceMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is mha:
                return self._inside(func, args, kwargs)
            out = func(*args, **kwargs)
            name = getattr(func, "__name__", "")
            try:
                self._record(func, name, args, kwargs, out)
            except MMError:
                raise
            except Exception as e:   # never let drawing break the user's computation
                recorder.rec.skipped.append(f"{name}: not drawn ({type(e).__name__}: {e})")
            return out

        def _inside(self, func, args, kwargs):
            # F.multi_head_attention_forward is Python that hands itself to the mode; run its
            # body with the mode on so its linears, views and attention are recorded.
            original = F.has_torch_function
            calls = [0]

            def once(*a):
                calls[0] += 1
                return False if calls[0] == 1 else original(*a)

            F.has_torch_function = once
            try:
                with self:
                    return func(*args, **kwargs)
            finally:
                F.has_torch_function = original

        def _record(self, func, name, args, kwargs, out):
            if name in _MATMULS and len(args) >= 2 and not kwargs.get("out"):
                recorder.matmul(args[0], args[1], out, name.strip("_"))
            elif name == "__rmatmul__" and len(args) >= 2:
                recorder.matmul(args[1], args[0], out, "matmul")
            elif func is linear:
                x, w = args[0], args[1] if len(args) > 1 else kwargs.get("weight")
                b = args[2] if len(args) > 2 else kwargs.get("bias")
                recorder.linear(x, w, b, out)
            elif name in ("addmm", "baddbmm") and len(args) >= 3:
                recorder.addmm(args[0], args[1], args[2], out, kwargs.get("beta", 1),
                               kwargs.get("alpha", 1), name)
            elif name == "einsum" and args and isinstance(args[0], str):
                ops = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) \
                    else args[1:]
                if all(isinstance(t, torch.Tensor) for t in ops):
                    recorder.einsum(args[0], list(ops), out)
            elif func is sdpa:
                names = ("attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
                extra = dict(zip(names, args[3:]), **kwargs)
                recorder.attention(args[0], args[1], args[2], out, **extra)
            elif name == "__get__":   # a property: x.T names x_t
                attr = getattr(getattr(func, "__self__", None), "__name__", "")
                if attr in ("T", "mT"):
                    recorder.names.derive_name("T", args, out)
            elif name not in ("__set__", "size", "dim", "numel", "shape"):
                recorder.after_other(name, (args, kwargs), out)
                recorder.names.derive_name(name, args, out)

    return TraceMode()


def record(fn, args=(), kwargs=None, *, batch: int = 0, head: int = 0) -> tuple:
    """Run fn(*args, **kwargs) with torch, recording its matmuls. Returns (recorder, result)."""
    torch = require_torch()

    if batch < 0 or head < 0:
        raise MMError(f"batch and head are indices: give 0 or more, not {batch} and {head}")
    recorder = Recorder(fn, batch, head)
    kwargs = kwargs or {}
    recorder.names.name_arguments(args, kwargs)
    mode = make_mode(recorder)

    def pre_hook(module, inputs):
        recorder.names.see_module(module, top_level=not recorder.scope)
        recorder.scope.append(recorder.names.module_paths.get(id(module), ""))

    def post_hook(module, inputs, output):
        if recorder.scope:
            recorder.scope.pop()
        path = recorder.names.module_paths.get(id(module), "")
        outs = flat_tensors(output, [])
        if path and outs:
            recorder.keep.append(outs[0])
            recorder.names.module_outputs.setdefault(id(outs[0]), path)
        if path and outs and id(outs[0]) in recorder.by_tensor:
            # a module with weights names what it computed; an activation module's name
            # gives way to the layer it finishes (relu after linear1 stays linear1)
            weighted = any(True for _ in module.parameters(recurse=False))
            recorder.by_tensor[id(outs[0])][0].hint(path, 2 if weighted else 1.5)

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(pre_hook),
             torch.nn.modules.module.register_module_forward_hook(post_hook)]
    previous = sys.getprofile()
    sys.setprofile(recorder.names.profile)
    try:
        with mode:
            result = fn(*args, **kwargs)
    finally:
        try:
            sys.setprofile(previous)
        except TypeError:   # a C-level profiler (cProfile) cannot be handed back this way
            sys.setprofile(None)
        for h in hooks:
            h.remove()
    outs = flat_tensors(result, [])
    if outs and id(outs[0]) in recorder.by_tensor:
        node = recorder.by_tensor[id(outs[0])][0]
        recorder.rec.output = node
        node.hint("out", 0.5)
    recorder.rec.returned = result
    recorder.names.finish(recorder.rec.nodes, recorder.leaves.values())
    return recorder, result
