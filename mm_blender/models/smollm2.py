"""SmolLM2-135M (and other llama-architecture GGUF files): RMSNorm, RoPE, SwiGLU, grouped-query
attention, weights dequantised lazily (embedding rows of the text's tokens and the blocks up to
the chosen layer only). One attention head from a real forward pass, in numpy or torch."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import MMError
from . import layers, sources, tokenise
from .gguf_file import GGUFFile
from .torch_head import torch_head


class LlamaGGUF:
    causal = True

    def __init__(self, path, label: str | None = None):
        self.gguf = GGUFFile(path)
        self.path = self.gguf.path
        self.label = label or str(path)
        arch = self.gguf.metadata.get("general.architecture")
        if arch != "llama":
            raise MMError(f"{self.path}: architecture '{arch}' is not supported (llama is)")
        f = self.gguf.field
        self.n_layer = int(f("llama.block_count"))
        self.d_model = int(f("llama.embedding_length"))
        self.n_head = int(f("llama.attention.head_count"))
        self.n_kv_head = int(self.gguf.metadata.get("llama.attention.head_count_kv", self.n_head))
        self.head_dim = int(self.gguf.metadata.get("llama.attention.key_length",
                                                   self.d_model // self.n_head))
        self.eps = float(f("llama.attention.layer_norm_rms_epsilon"))
        self.theta = float(self.gguf.metadata.get("llama.rope.freq_base", 10000.0))
        self.max_tokens = int(self.gguf.metadata.get("llama.context_length", 2048))
        rope_dims = int(self.gguf.metadata.get("llama.rope.dimension_count", self.head_dim))
        scaling = self.gguf.metadata.get("llama.rope.scaling.type", "none")
        if rope_dims != self.head_dim or scaling not in ("none", None):
            raise MMError(f"{self.path}: partial or scaled RoPE ({rope_dims} of {self.head_dim} "
                          f"dims, scaling {scaling}) is not supported")
        if self.n_head % self.n_kv_head:
            raise MMError(f"{self.path}: {self.n_head} query heads do not share "
                          f"{self.n_kv_head} key/value heads evenly")
        self.group = self.n_head // self.n_kv_head

    def kv_head(self, head: int) -> int:
        return head // self.group

    def encode(self, text, limit):
        if not hasattr(self, "_tokenizer"):
            self._tokenizer = tokenise.gguf_bpe(self.gguf)
        ids, strings = self._tokenizer.encode(text)
        if self.gguf.metadata.get("tokenizer.ggml.add_bos_token"):
            bos = int(self.gguf.field("tokenizer.ggml.bos_token_id"))
            ids, strings = [bos] + ids, [self.gguf.field("tokenizer.ggml.tokens")[bos]] + strings
        return ids[:limit], strings[:limit]

    # --- weights ------------------------------------------------------------------------------
    def _unpermute(self, w, n_heads):
        """Undo llama.cpp's convert-time permutation of Q/K rows, back to the Hugging Face
        layout whose RoPE pairs dims i and i + hd/2 (llama.cpp's pairs 2i and 2i+1)."""
        out, width = w.shape
        return w.reshape(n_heads, self.head_dim // 2, 2, width).swapaxes(1, 2).reshape(out, width)

    def layer_weights(self, layer, unpermute=True) -> dict:
        """One block's weights in nn.Linear layout (out x in), Q/K rows un-permuted."""
        g = self.gguf
        w = {k: g.get(f"blk.{layer}.{name}.weight") for k, name in (
            ("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"), ("o", "attn_output"),
            ("gate", "ffn_gate"), ("up", "ffn_up"), ("down", "ffn_down"),
            ("attn_norm", "attn_norm"), ("ffn_norm", "ffn_norm"))}
        for k, name in (("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v")):
            bias = f"blk.{layer}.{name}.bias"
            w[k + "_b"] = g.get(bias) if bias in g.tensors else np.zeros(len(w[k]), np.float32)
        if unpermute:
            w["q"] = self._unpermute(w["q"], self.n_head)
            w["k"] = self._unpermute(w["k"], self.n_kv_head)
            w["q_b"] = self._unpermute(w["q_b"][:, None], self.n_head)[:, 0]
            w["k_b"] = self._unpermute(w["k_b"][:, None], self.n_kv_head)[:, 0]
        return w

    def embed(self, ids):
        return self.gguf.get("token_embd.weight", rows=ids)

    def head_weights(self, w, head) -> dict:
        hd = self.head_dim
        q_rows = slice(head * hd, (head + 1) * hd)
        kv_rows = slice(self.kv_head(head) * hd, (self.kv_head(head) + 1) * hd)
        return dict(wQ=w["q"][q_rows].T.copy(), bQ=w["q_b"][q_rows].copy(),
                    wK=w["k"][kv_rows].T.copy(), bK=w["k_b"][kv_rows].copy(),
                    wV=w["v"][kv_rows].T.copy(), bV=w["v_b"][kv_rows].copy(),
                    wO=w["o"][:, q_rows].T.copy(), bO=np.zeros(self.d_model, np.float32))

    # --- numpy forward ------------------------------------------------------------------------
    def forward(self, ids, n_layers, progress=None):
        """The residual stream after blocks 0..n_layers-1 (the input of block n_layers)."""
        x = self.embed(ids)
        cos, sin = layers.rope_tables(len(ids), self.head_dim, self.theta)
        for l in range(n_layers):
            if progress:
                progress(l / (n_layers + 1), f"layer {l}")
            w = self.layer_weights(l)
            a = layers.rms_norm(x, w["attn_norm"], self.eps)
            q = layers.apply_rope(layers.split_heads(a @ w["q"].T + w["q_b"], self.n_head),
                                  cos, sin)
            k = layers.apply_rope(layers.split_heads(a @ w["k"].T + w["k_b"], self.n_kv_head),
                                  cos, sin)
            v = layers.split_heads(a @ w["v"].T + w["v_b"], self.n_kv_head)
            # query head h reads key/value head h // group
            k, v = np.repeat(k, self.group, axis=0), np.repeat(v, self.group, axis=0)
            context = layers.merge_heads(layers.attention_weights(q, k, True) @ v)
            x = x + context @ w["o"].T
            m = layers.rms_norm(x, w["ffn_norm"], self.eps)
            x = x + (layers.silu(m @ w["gate"].T) * (m @ w["up"].T)) @ w["down"].T
        return x

    def capture_numpy(self, ids, layer, head, progress):
        x = self.forward(ids, layer, progress)
        progress(layer / (layer + 1), f"layer {layer} head {head}")
        w = self.layer_weights(layer)
        hw = self.head_weights(w, head)
        inp = layers.rms_norm(x, w["attn_norm"], self.eps)
        cos, sin = layers.rope_tables(len(ids), self.head_dim, self.theta)
        q = layers.apply_rope(inp @ hw["wQ"] + hw["bQ"], cos, sin)
        k = layers.apply_rope(inp @ hw["wK"] + hw["bK"], cos, sin)
        v = inp @ hw["wV"] + hw["bV"]
        attn = layers.attention_weights(q, k, True)
        head_out = attn @ v
        return dict(hw, input=inp, Q=q, K=k, V=v, attn=attn, head_out=head_out,
                    out=head_out @ hw["wO"])

    # --- torch forward (written separately: Q/K in llama.cpp's stored order with interleaved
    # complex RoPE, GQA inside scaled_dot_product_attention) ------------------------------------
    def capture_torch(self, ids, layer, head, progress):
        import torch
        import torch.nn.functional as F

        n, hd = len(ids), self.head_dim
        freqs = 1.0 / self.theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        angles = torch.outer(torch.arange(n, dtype=torch.float64), freqs)
        rotation = torch.polar(torch.ones_like(angles), angles).to(torch.complex64)

        def rope(x):  # (heads, T, hd), pairs (2i, 2i+1)
            pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], hd // 2, 2).contiguous())
            return torch.view_as_real(pairs * rotation).reshape(x.shape)

        def heads(x, count):
            return x.view(n, count, hd).transpose(0, 1)

        with torch.no_grad():
            x = torch.from_numpy(self.embed(ids))
            for l in range(layer + 1):
                progress(l / (layer + 1), f"layer {l}")
                raw = self.layer_weights(l, unpermute=False)
                w = {k: torch.from_numpy(v) for k, v in raw.items()}
                a = F.rms_norm(x, (self.d_model,), w["attn_norm"], self.eps)
                q = rope(heads(F.linear(a, w["q"], w["q_b"]), self.n_head))
                k = rope(heads(F.linear(a, w["k"], w["k_b"]), self.n_kv_head))
                v = heads(F.linear(a, w["v"], w["v_b"]), self.n_kv_head)
                if l == layer:
                    break
                context = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                         enable_gqa=True)
                x = x + F.linear(context.transpose(0, 1).reshape(n, -1), w["o"])
                m = F.rms_norm(x, (self.d_model,), w["ffn_norm"], self.eps)
                x = x + F.linear(F.silu(F.linear(m, w["gate"])) * F.linear(m, w["up"]),
                                 w["down"])

            def hf_order(t):  # stored pair order (2i, 2i+1) -> Hugging Face (i, i + hd/2)
                return t.reshape(n, hd // 2, 2).transpose(1, 2).reshape(n, hd)

            g = self.kv_head(head)
            return torch_head(a, hf_order(q[head]), hf_order(k[g]), v[g], w["o"].T, head,
                              causal=True,
                              weights=self.head_weights(self.layer_weights(layer), head))


@lru_cache(maxsize=2)
def _open(path: str, label: str, stamp) -> LlamaGGUF:
    return LlamaGGUF(path, label)


def open_gguf(path, label: str | None = None) -> LlamaGGUF:
    path = Path(path)
    if not path.is_file():
        raise MMError(f"weights file {path} does not exist")
    st = path.stat()
    return _open(str(path), label or str(path), (st.st_mtime_ns, st.st_size))


def open_packaged() -> LlamaGGUF:
    return open_gguf(sources.package_file(sources.SMOLLM2_GGUF), "smollm2")
