"""Transformer building blocks in plain numpy (float32, vectorised): the complete code path that
works in a stock Blender. The torch paths in each model module are written independently."""

from __future__ import annotations

import numpy as np


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def rms_norm(x, weight, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def erf(x):
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and Blender no scipy."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x, approximate: str):
    if approximate == "tanh":  # GPT-2's "gelu_new"
        return 0.5 * x * (1.0 + np.tanh(np.float32(np.sqrt(2.0 / np.pi)) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + erf(x * np.float32(1.0 / np.sqrt(2.0))))


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention_weights(q, k, causal: bool):
    """softmax(q k^T / sqrt(hd)) for (..., T, hd) arrays, with the causal mask if asked."""
    scores = q @ np.swapaxes(k, -1, -2) / np.float32(np.sqrt(q.shape[-1]))
    if causal:
        t = q.shape[-2]
        scores = np.where(np.tril(np.ones((t, t), dtype=bool)), scores, np.float32(-np.inf))
    return softmax(scores)


def split_heads(x, n_heads):
    """(T, n*hd) -> (n, T, hd)"""
    t, width = x.shape
    return x.reshape(t, n_heads, width // n_heads).transpose(1, 0, 2)


def merge_heads(x):
    """(n, T, hd) -> (T, n*hd)"""
    n, t, hd = x.shape
    return x.transpose(1, 0, 2).reshape(t, n * hd)


def rope_tables(n_tokens, head_dim, theta):
    """cos/sin for rotate-half RoPE (the Hugging Face layout: dims i and i + hd/2 pair up)."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.outer(np.arange(n_tokens, dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin
