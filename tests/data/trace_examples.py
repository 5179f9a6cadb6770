"""Functions for the trace tests and the CLI (`trace tests/data/trace_examples.py:mlp`):
each builds a small torch computation with fixed seeds and runs it, taking no arguments."""
import math

import torch
import torch.nn as nn


def mlp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                        nn.Linear(24, 6))
    x = torch.randn(10, 12)
    return net(x)


def causal_head():
    torch.manual_seed(1)
    x = torch.randn(16, 24)
    w_q, w_k, w_v = (torch.randn(24, 8) / 5 for _ in range(3))
    q = x @ w_q
    k = x @ w_k
    v = x @ w_v
    scores = q @ k.T / math.sqrt(q.shape[-1])
    n = x.shape[0]
    scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    attn = torch.softmax(scores, dim=-1)
    out = attn @ v
    return out


def multihead_attention():
    torch.manual_seed(2)
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():   # torch starts them at zero; real ones show the bias rows
        mha.in_proj_bias.normal_(0, 0.1)
        mha.out_proj.bias.normal_(0, 0.1)
    x = torch.randn(1, 12, 32)
    out, _ = mha(x, x, x, need_weights=False)
    return out


def encoder_layer():
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True).eval()
    with torch.no_grad():
        layer.self_attn.in_proj_bias.normal_(0, 0.1)
    x = torch.randn(1, 32, 64)
    return layer(x)


def smollm2_head():
    from mm_blender.models import capture_head
    return capture_head("smollm2", 1, 4, tokens=24, backend="torch")
