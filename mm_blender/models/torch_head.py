"""The last step of every model's torch path: one head's attention and output, returned as
numpy. torch is imported inside the function only (it is optional)."""

from __future__ import annotations

import numpy as np


def torch_head(inp, q, k, v, proj, head, *, causal, weights):
    """attn, head_out and out of one head in torch: attn by an explicit masked softmax, head_out
    by scaled_dot_product_attention (so each checks the other), out through the projection."""
    import torch
    import torch.nn.functional as F

    hd = q.shape[-1]
    scores = (q @ k.T) / hd ** 0.5
    if causal:
        n = q.shape[0]
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    attn = torch.softmax(scores, dim=-1)
    head_out = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=causal)[0]
    out = head_out @ proj[head * hd:(head + 1) * hd, :]
    arrays = dict(input=inp, Q=q, K=k, V=v, attn=attn, head_out=head_out, out=out)
    return dict(weights, **{n: a.detach().numpy().astype(np.float32) for n, a in arrays.items()})
