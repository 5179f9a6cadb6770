"""Recording: what each torch op means for the drawing. Matmuls become `graph` nodes
(2-D slices at one batch index and head), other ops extend a matmul's epilogue or stay
leaves. `mode` feeds it; `naming` names its nodes. torch is imported inside functions."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import graph
from .graph import Node
from .naming import Namer
from .tensors import as_matrix, as_numpy, flat_tensors, is_float, pick


@dataclass
class Recording:
    nodes: list = field(default_factory=list)      # every matmul node, in creation order
    output: Node | None = None                      # the node of fn's returned tensor, if any
    returned: object = None
    skipped: list = field(default_factory=list)     # ops seen but not drawn, with why


class Recorder:
    """The trace's state: nodes by tensor, leaves, names; `make_mode` feeds it."""

    def __init__(self, fn, batch: int = 0, head: int = 0):
        self.fn = fn
        self.batch, self.head = int(batch), int(head)
        self.by_tensor: dict[int, tuple[Node, tuple]] = {}   # id -> (node, view)
        self.leaves: dict[tuple, Node] = {}
        self.keep: list = []              # tensors kept alive so their ids stay unique
        self.rec = Recording()
        self.names = Namer(fn, self.keep)
        self.scope: list[str] = []        # module paths of the forward calls running now
        self.counts: dict[str, int] = {}

    # --- views: how a tensor is seen as one matrix --------------------------------------
    def _sel(self, lead: tuple) -> tuple | None:
        sel = (self.batch, self.head) + (0,) * max(0, len(lead) - 2)
        sel = sel[:len(lead)]
        if any(s >= n for s, n in zip(sel, lead)):
            return None
        return sel

    def _view(self, t, view):
        a = as_numpy(t)
        if view[0] == "rows":
            return a.reshape(-1, a.shape[-1])
        return pick(a, view[1], view[2])

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
        if not (is_float(a) and is_float(b) and is_float(out)):
            return
        if a.dim() >= 3 and b.dim() <= 2:          # a batch of rows times one matrix
            k = a.shape[-1]
            left = self.node_for(a, as_numpy(a).reshape(-1, k))
            right = self.node_for(b, as_matrix(as_numpy(b)) if b.dim() == 2
                                  else as_numpy(b).reshape(-1, 1))
            view = ("rows",)
        else:
            lead = tuple(out.shape[:-2]) if out.dim() >= 3 else ()
            sel = self._sel(lead)
            if sel is None:
                self.rec.skipped.append(f"{what}: batch {self.batch} / head {self.head} out "
                                        f"of range for shape {tuple(out.shape)}")
                return
            an, bn = as_numpy(a), as_numpy(b)
            am = pick(an, sel, lead) if an.ndim >= 2 else an.reshape(1, -1)
            bm = pick(bn, sel, lead) if bn.ndim >= 2 else bn.reshape(-1, 1)
            left, right = self.node_for(a, am), self.node_for(b, bm)
            view = ("sel", sel, lead)
        value = self._view(out, view) if out.dim() >= 2 else as_numpy(out).reshape(
            left.value.shape[0], right.value.shape[1])
        self.add(out, graph.matmul(left, right, value, what=what), view, what)

    def linear(self, x, weight, bias, out, what="linear"):
        if not (is_float(x) and is_float(weight) and is_float(out)) or weight.dim() != 2:
            return
        k = x.shape[-1]
        left = self.node_for(x, as_numpy(x).reshape(-1, k), role="input")
        right = self.node_for(weight, as_numpy(weight).T, "_t")
        if bias is not None and bool(bias.detach().any()):   # a zero bias draws as none
            left = graph.with_ones(left)
            right = graph.with_bias(right, as_numpy(bias))
        value = as_numpy(out).reshape(-1, out.shape[-1])
        module = self.scope[-1] if self.scope else ""
        node = graph.matmul(left, right, value, what=what)
        self.add(out, node, ("rows",), what)
        if node is None:
            return
        if module:
            node.hint(module, 1)
        weight_name = self.names.param_names.get(id(weight), "")
        if weight_name:   # named after the layer owning the weight: self_attn.out_proj
            for end in (".weight", "_weight"):
                if weight_name.endswith(end):
                    weight_name = weight_name[:-len(end)]
            node.hint(weight_name, 2.1)

    def addmm(self, bias, m1, m2, out, beta, alpha, what):
        """beta * bias + alpha * (m1 @ m2), drawn when it is a plain product plus a row bias."""
        if alpha != 1 or not is_float(bias):
            return self.after_other(what, (bias, m1, m2), out)
        b = as_numpy(bias)
        if beta == 0 or not b.any():       # nothing added: a plain product
            return self.matmul(m1, m2, out, what)
        if beta != 1:
            return self.after_other(what, (bias, m1, m2), out)
        if b.ndim > 1 and b.shape[-2] != 1:
            return self.after_other(what, (bias, m1, m2), out)
        if m1.dim() == 2:
            left = graph.with_ones(self.node_for(m1, as_numpy(m1)))
            right = graph.with_bias(self.node_for(m2, as_numpy(m2)), b.reshape(-1))
            self.add(out, graph.matmul(left, right, as_numpy(out), what=what), ("sel", (), ()),
                     what)
            return
        lead = tuple(out.shape[:-2])
        sel = self._sel(lead)
        if sel is None:
            return
        bm = pick(b.reshape((1,) * (out.dim() - b.ndim) + b.shape), sel, lead)
        left = graph.with_ones(self.node_for(m1, pick(as_numpy(m1), sel, lead)))
        right = graph.with_bias(self.node_for(m2, pick(as_numpy(m2), sel, lead)),
                                bm.reshape(-1))
        self.add(out, graph.matmul(left, right, pick(as_numpy(out), sel, lead), what=what),
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
        at = as_numpy(operands[0]).transpose([a.index(c) for c in batch + rows + contract])
        bt = as_numpy(operands[1]).transpose([b.index(c) for c in batch + contract + cols])
        lead = tuple(out.shape[:-2])
        sel = self._sel(lead)
        if sel is None:
            return
        left = self.node_for(operands[0], pick(at, sel, lead) if batch else at)
        right = self.node_for(operands[1], pick(bt, sel, lead) if batch else bt)
        view = ("sel", sel, lead)
        self.add(out, graph.matmul(left, right, self._view(out, view), what="einsum"), view,
                 "einsum")

    def attention(self, q, k, v, out, attn_mask=None, dropout_p=0.0, is_causal=False,
                  scale=None, enable_gqa=False):
        """scaled_dot_product_attention as Q @ K_t, a softmax epilogue, and attn @ V."""
        import torch
        if dropout_p or q.dim() < 2 or not is_float(out):
            return
        lead = tuple(out.shape[:-2])
        sel = self._sel(lead)
        if sel is None:
            return
        hd = q.shape[-1]
        qm, km, vm = (pick(as_numpy(t), sel, lead) for t in (q, k, v))
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
                mask = torch.from_numpy(pick(attn_mask.detach().cpu().numpy(), sel, lead)
                                        if attn_mask.dim() > 2 else
                                        attn_mask.detach().cpu().numpy())
                scores = (scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool
                          else scores + mask.to(torch.float32))
            weights = torch.softmax(scores, dim=-1).numpy()
        attn = None
        if scale is None or math.isclose(scale, 1 / math.sqrt(hd), rel_tol=1e-6):
            order = ("softmax(x/sqrt(k))", "softmax(tril(x/sqrt(k)))")
            # the one asked for first (a single row is both)
            for epi in (order[::-1] if is_causal or attn_mask is not None else order):
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
        outs = [t for t in flat_tensors(out, []) if is_float(t)]
        ins = [t for t in flat_tensors(inputs, []) if id(t) in self.by_tensor]
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
