"""Recording: run a function under a torch function mode and turn the matmuls it performs
into `graph` nodes (2-D slices for one batch index and head), with names from modules and
the function's variables. torch is imported here only inside functions."""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import MMError
from . import graph
from .graph import Node


@dataclass
class Recording:
    nodes: list = field(default_factory=list)      # every matmul node, in creation order
    output: Node | None = None                      # the node of fn's returned tensor, if any
    returned: object = None
    skipped: list = field(default_factory=list)     # ops seen but not drawn, with why


def _numpy(t) -> np.ndarray:
    import torch
    with torch._C.DisableTorchFunction():
        return t.detach().to("cpu", torch.float32).numpy()


def _is_float(t) -> bool:
    import torch
    return isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() >= 1


def _flat_tensors(obj, out, depth=0):
    import torch
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)) and depth < 2:
        for o in obj:
            _flat_tensors(o, out, depth + 1)
    elif isinstance(obj, dict) and depth < 2:
        for o in obj.values():
            _flat_tensors(o, out, depth + 1)
    return out


def _as_matrix(a: np.ndarray) -> np.ndarray:
    return a.reshape(1, -1) if a.ndim == 1 else a


def _pick(a: np.ndarray, sel: tuple, lead: tuple) -> np.ndarray:
    """The 2-D matrix of `a` (leading dims broadcast against `lead`) at leading index `sel`."""
    if a.ndim <= 2:
        return _as_matrix(a)
    own = a.shape[:-2]
    offset = len(lead) - len(own)
    idx = []
    for i, size in enumerate(own):
        out_size, s = lead[offset + i], sel[offset + i]
        idx.append(0 if size == 1 else s * size // out_size)   # grouped heads share a key
    return a[tuple(idx)]


_TORCH_DIR = None


def _user_frame(filename: str) -> bool:
    global _TORCH_DIR
    if _TORCH_DIR is None:
        import torch
        _TORCH_DIR = os.path.dirname(torch.__file__)
    here = os.path.dirname(__file__)   # our own recording code; the models are fair game
    return not (filename.startswith(_TORCH_DIR) or filename.startswith(here)
                or filename.startswith("<frozen"))


class Recorder:
    """The trace's state: nodes by tensor, leaves, names; `make_mode` feeds it."""

    def __init__(self, fn, batch: int = 0, head: int = 0):
        self.fn = fn
        self.batch, self.head = int(batch), int(head)
        self.by_tensor: dict[int, tuple[Node, tuple]] = {}   # id -> (node, view)
        self.leaves: dict[tuple, Node] = {}
        self.keep: list = []              # tensors kept alive so their ids stay unique
        self.rec = Recording()
        self.var_names: dict[int, str] = {}
        self.param_names: dict[int, str] = {}
        self.module_paths: dict[int, str] = {}
        self.scope: list[str] = []
        self.counts: dict[str, int] = {}
        self.module_outputs: dict[int, str] = {}
        self.derived: dict[int, tuple] = {}   # id -> (id of the tensor it views, suffix)

    # --- views: how a tensor is seen as one matrix --------------------------------------
    def _sel(self, lead: tuple) -> tuple | None:
        sel = (self.batch, self.head) + (0,) * max(0, len(lead) - 2)
        sel = sel[:len(lead)]
        if any(s >= n for s, n in zip(sel, lead)):
            return None
        return sel

    def _view(self, t, view):
        a = _numpy(t)
        if view[0] == "rows":
            return a.reshape(-1, a.shape[-1])
        return _pick(a, view[1], view[2])

    def register(self, t, node: Node, view) -> None:
        self.keep.append(t)
        self.by_tensor[id(t)] = (node, view)
        node._memo.setdefault("tensors", []).append((id(t), ""))
        if node.is_matmul and node not in self.rec.nodes:
            self.rec.nodes.append(node)

    # --- finding the node of an argument ------------------------------------------------
    def node_for(self, t, mat: np.ndarray, suffix: str = "", role: str = "") -> Node:
        """The node drawing `mat`, which the op reads from tensor `t`: t's own node (or its
        transpose, or a block of its columns), an earlier matmul with these values, or a new
        leaf of torch's values."""
        mat = np.ascontiguousarray(mat, dtype=np.float32)
        candidates = []
        if id(t) in self.by_tensor:
            candidates.append(self.by_tensor[id(t)][0])
        candidates += [n for n in reversed(self.rec.nodes) if n.epilogue not in graph.PARTIAL]
        for node in candidates:
            if node.value.shape == mat.shape and np.array_equal(node.value, mat, equal_nan=True):
                return node
            if node.value.shape == mat.shape[::-1] and np.array_equal(node.value.T, mat,
                                                                       equal_nan=True):
                return graph.transpose(node)
        for node in candidates:
            block = graph.column_block(node, mat)
            if block is not None:
                if role:
                    scope = self._scope()
                    # a head's slice of a fused projection: its role says more than the
                    # name of the whole projection
                    block.hint(f"{scope}{role}", 3.5)
                    if block.right is not node.right:
                        block.right.hint(f"{scope}w{role}", 3.5)
                if block not in self.rec.nodes:
                    self.rec.nodes.append(block)
                return block
        key = (id(t), mat.shape, suffix, hash(mat.tobytes()))
        if key not in self.leaves:
            self.keep.append(t)
            new = graph.leaf(mat)
            new._memo["tensors"] = [(id(t), suffix)]
            if role:
                new.hint(f"{self._scope()}{role}", 1)
            self.leaves[key] = new
        return self.leaves[key]

    def _scope(self) -> str:
        return (self.scope[-1] + ".") if self.scope and self.scope[-1] else ""

    def _generated(self, what: str) -> str:
        self.counts[what] = self.counts.get(what, 0) + 1
        return f"{self._scope()}{what}{self.counts[what]}"

    def add(self, out_t, node: Node | None, view, what: str, role: str = "") -> None:
        if node is None:
            self.rec.skipped.append(f"{what}: torch's result is not epilogue(left @ right)")
            return
        node.what = what
        node.hint(self._generated(role or what), 0)
        if out_t is not None:
            self.register(out_t, node, view)
        elif node not in self.rec.nodes:
            self.rec.nodes.append(node)

    # --- the recorded ops ---------------------------------------------------------------
    def matmul(self, a, b, out, what):
        if not (_is_float(a) and _is_float(b) and _is_float(out)):
            return
        if a.dim() >= 3 and b.dim() <= 2:          # a batch of rows times one matrix
            k = a.shape[-1]
            left = self.node_for(a, _numpy(a).reshape(-1, k))
            right = self.node_for(b, _as_matrix(_numpy(b)) if b.dim() == 2
                                  else _numpy(b).reshape(-1, 1))
            view = ("rows",)
        else:
            lead = tuple(out.shape[:-2]) if out.dim() >= 3 else ()
            sel = self._sel(lead)
            if sel is None:
                self.rec.skipped.append(f"{what}: batch {self.batch} / head {self.head} out "
                                        f"of range for shape {tuple(out.shape)}")
                return
            an, bn = _numpy(a), _numpy(b)
            am = _pick(an, sel, lead) if an.ndim >= 2 else an.reshape(1, -1)
            bm = _pick(bn, sel, lead) if bn.ndim >= 2 else bn.reshape(-1, 1)
            left, right = self.node_for(a, am), self.node_for(b, bm)
            view = ("sel", sel, lead)
        value = self._view(out, view) if out.dim() >= 2 else _numpy(out).reshape(
            left.value.shape[0], right.value.shape[1])
        self.add(out, graph.matmul(left, right, value, what=what), view, what)

    def linear(self, x, weight, bias, out, what="linear"):
        if not (_is_float(x) and _is_float(weight) and _is_float(out)) or weight.dim() != 2:
            return
        k = x.shape[-1]
        left = self.node_for(x, _numpy(x).reshape(-1, k), role="input")
        right = self.node_for(weight, _numpy(weight).T, "_t")
        if bias is not None and bool(bias.detach().any()):   # a zero bias draws as none
            left = graph.with_ones(left)
            right = graph.with_bias(right, _numpy(bias))
        value = _numpy(out).reshape(-1, out.shape[-1])
        module = self.scope[-1] if self.scope else ""
        node = graph.matmul(left, right, value, what=what)
        self.add(out, node, ("rows",), what)
        if node is None:
            return
        if module:
            node.hint(module, 1)
        weight_name = self.param_names.get(id(weight), "")
        if weight_name:   # named after the layer owning the weight: self_attn.out_proj
            for end in (".weight", "_weight"):
                if weight_name.endswith(end):
                    weight_name = weight_name[:-len(end)]
            node.hint(weight_name, 2.1)

    def addmm(self, bias, m1, m2, out, beta, alpha, what):
        """beta * bias + alpha * (m1 @ m2), drawn when it is a plain product plus a row bias."""
        if alpha != 1 or not _is_float(bias):
            return self.after_other(what, (bias, m1, m2), out)
        b = _numpy(bias)
        if beta == 0 or not b.any():       # nothing added: a plain product
            return self.matmul(m1, m2, out, what)
        if beta != 1:
            return self.after_other(what, (bias, m1, m2), out)
        if b.ndim > 1 and b.shape[-2] != 1:
            return self.after_other(what, (bias, m1, m2), out)
        if m1.dim() == 2:
            left = graph.with_ones(self.node_for(m1, _numpy(m1)))
            right = graph.with_bias(self.node_for(m2, _numpy(m2)), b.reshape(-1))
            self.add(out, graph.matmul(left, right, _numpy(out), what=what), ("sel", (), ()),
                     what)
            return
        lead = tuple(out.shape[:-2])
        sel = self._sel(lead)
        if sel is None:
            return
        bm = _pick(b.reshape((1,) * (out.dim() - b.ndim) + b.shape), sel, lead)
        left = graph.with_ones(self.node_for(m1, _pick(_numpy(m1), sel, lead)))
        right = graph.with_bias(self.node_for(m2, _pick(_numpy(m2), sel, lead)),
                                bm.reshape(-1))
        self.add(out, graph.matmul(left, right, _pick(_numpy(out), sel, lead), what=what),
                 ("sel", sel, lead), what)

    def einsum(self, equation, operands, out):
        if len(operands) != 2 or "..." in equation or "->" not in equation:
            return
        ins, o = equation.replace(" ", "").split("->")
        parts = ins.split(",")
        if len(parts) != 2:
            return
        a, b = parts
        if len(set(a)) != len(a) or len(set(b)) != len(b) or len(set(o)) != len(o):
            return
        batch = [c for c in o if c in a and c in b]
        rows = [c for c in o if c in a and c not in b]
        cols = [c for c in o if c in b and c not in a]
        contract = [c for c in a if c in b and c not in o]
        if len(rows) != 1 or len(cols) != 1 or len(contract) != 1 or \
                set(a) != set(batch + rows + contract) or set(b) != set(batch + cols + contract):
            return
        if o != "".join(batch) + rows[0] + cols[0]:
            return
        at = _numpy(operands[0]).transpose([a.index(c) for c in batch + rows + contract])
        bt = _numpy(operands[1]).transpose([b.index(c) for c in batch + contract + cols])
        lead = tuple(out.shape[:-2])
        sel = self._sel(lead)
        if sel is None:
            return
        left = self.node_for(operands[0], _pick(at, sel, lead) if batch else at)
        right = self.node_for(operands[1], _pick(bt, sel, lead) if batch else bt)
        view = ("sel", sel, lead)
        self.add(out, graph.matmul(left, right, self._view(out, view), what="einsum"), view,
                 "einsum")

    def attention(self, q, k, v, out, attn_mask=None, dropout_p=0.0, is_causal=False,
                  scale=None, enable_gqa=False):
        """scaled_dot_product_attention as Q @ K_t, a softmax epilogue, and attn @ V."""
        import torch
        if dropout_p or q.dim() < 2 or not _is_float(out):
            return
        lead = tuple(out.shape[:-2])
        sel = self._sel(lead)
        if sel is None:
            return
        hd = q.shape[-1]
        qm, km, vm = (_pick(_numpy(t), sel, lead) for t in (q, k, v))
        Q = self.node_for(q, qm, role="Q")
        K_t = graph.transpose(self.node_for(k, km, role="K"))
        V = self.node_for(v, vm, role="V")
        # torch's own attention weights for this slice, to check our epilogue against
        with torch._C.DisableTorchFunction():
            qs, ks = torch.from_numpy(qm), torch.from_numpy(km)
            scores = (qs @ ks.T) * (scale if scale is not None else 1 / math.sqrt(hd))
            n, s = scores.shape
            if is_causal:
                scores = scores.masked_fill(~torch.ones(n, s, dtype=torch.bool).tril(),
                                            float("-inf"))
            if attn_mask is not None:
                mask = torch.from_numpy(_pick(attn_mask.detach().cpu().numpy(), sel, lead)
                                        if attn_mask.dim() > 2 else
                                        attn_mask.detach().cpu().numpy())
                scores = (scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool
                          else scores + mask.to(torch.float32))
            weights = torch.softmax(scores, dim=-1).numpy()
        attn = None
        if scale is None or math.isclose(scale, 1 / math.sqrt(hd), rel_tol=1e-6):
            for epi in ("softmax(x/sqrt(k))", "softmax(tril(x/sqrt(k)))"):
                attn = graph.matmul(Q, K_t, weights, epi, what="scaled_dot_product_attention")
                if attn is not None:
                    break
        if attn is None:   # another scale or mask: torch's weights as a leaf
            attn = graph.leaf(weights, "scaled_dot_product_attention")
            attn.hint(f"{self._scope()}attn", 1)
            self.rec.skipped.append("scaled_dot_product_attention: the scale or mask is not "
                                    "an mm epilogue; its weights are drawn as a leaf")
        else:
            attn.hint(f"{self._scope()}attn", 1)
            self.rec.nodes.append(attn)
        view = ("sel", sel, lead)
        node = graph.matmul(attn, V, self._view(out, view), what="scaled_dot_product_attention")
        if node is not None:
            node.hint(f"{self._scope()}head_out", 1)
        self.add(out, node, view, "attention", role="head_out")

    def after_other(self, what, inputs, out):
        """Any other op: its result is the same matmul with a longer epilogue when an mm
        epilogue gives exactly its values (relu, softmax, a causal mask...); a copy of a
        matrix stays that matrix; anything else is a leaf, made when something reads it."""
        outs = [t for t in _flat_tensors(out, []) if _is_float(t)]
        ins = [t for t in _flat_tensors(inputs, []) if id(t) in self.by_tensor]
        if len(outs) != 1 or not ins:
            return
        o = outs[0]
        for t in ins:
            node, view = self.by_tensor[id(t)]
            if tuple(t.shape) != tuple(o.shape):
                continue
            new = graph.extend(node, self._view(o, view))
            if new is not None:
                self.register(o, new, view)
                return
        self.by_tensor.pop(id(o), None)   # changed in place: its old node keeps old values

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

    # --- names --------------------------------------------------------------------------
    def see_module(self, module) -> None:
        if id(module) in self.module_paths:
            return
        if not self.scope:          # a top-level module: its variable name is its path
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
            for t in _flat_tensors(value, []):
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

    def finish_names(self) -> None:
        # a leaf read through a view (x.transpose(0, 1) inside a module) is named after
        # the variable holding the same values
        named: dict[tuple, list] = {}
        for name, t in self._named_tensors():
            if _is_float(t) and t.dim() >= 2 and t.numel() <= 1 << 24:
                rows = _numpy(t).reshape(-1, t.shape[-1])
                named.setdefault(rows.shape, []).append((name, rows))
        for node in self.leaves.values():
            if max((p for p, _ in node.names), default=-1) >= 2.8:
                continue
            for name, rows in named.get(node.value.shape, ()):
                if np.array_equal(rows, node.value, equal_nan=True):
                    node.hint(name, 2.8)
                    break
        seen = set()
        every = list(self.rec.nodes) + list(self.leaves.values())
        stack = list(every)
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
                    recorder.derive_name("T", args, out)
            elif name not in ("__set__", "size", "dim", "numel", "shape"):
                recorder.after_other(name, (args, kwargs), out)
                recorder.derive_name(name, args, out)

    return TraceMode()


def record(fn, args=(), kwargs=None, *, batch: int = 0, head: int = 0) -> tuple:
    """Run fn(*args, **kwargs) with torch, recording its matmuls. Returns (recorder, result)."""
    torch = require_torch()

    if batch < 0 or head < 0:
        raise MMError(f"batch and head are indices: give 0 or more, not {batch} and {head}")
    recorder = Recorder(fn, batch, head)
    kwargs = kwargs or {}
    recorder.name_arguments(args, kwargs)
    mode = make_mode(recorder)

    def pre_hook(module, inputs):
        recorder.see_module(module)
        recorder.scope.append(recorder.module_paths.get(id(module), ""))

    def post_hook(module, inputs, output):
        if recorder.scope:
            recorder.scope.pop()
        path = recorder.module_paths.get(id(module), "")
        outs = _flat_tensors(output, [])
        if path and outs:
            recorder.keep.append(outs[0])
            recorder.module_outputs.setdefault(id(outs[0]), path)
        if path and outs and id(outs[0]) in recorder.by_tensor:
            # a module with weights names what it computed; an activation module's name
            # gives way to the layer it finishes (relu after linear1 stays linear1)
            weighted = any(True for _ in module.parameters(recurse=False))
            recorder.by_tensor[id(outs[0])][0].hint(path, 2 if weighted else 1.5)

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(pre_hook),
             torch.nn.modules.module.register_module_forward_hook(post_hook)]
    previous = sys.getprofile()
    sys.setprofile(recorder.profile)
    try:
        with mode:
            result = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
        for h in hooks:
            h.remove()
    outs = _flat_tensors(result, [])
    if outs and id(outs[0]) in recorder.by_tensor:
        node = recorder.by_tensor[id(outs[0])][0]
        recorder.rec.output = node
        node.hint("out", 0.5)
    recorder.rec.returned = result
    recorder.finish_names()
    return recorder, result

