"""all-MiniLM-L6-v2 (and other BERT encoders in a folder with config.json): post-LN blocks,
bidirectional attention, biases everywhere. One attention head from a real forward pass, in numpy
or torch."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core import file_headers
from ..errors import MMError
from . import layers, sources, tokenise
from .checkpoint_files import SafetensorsFile, StateDict, load_torch_file
from .torch_head import torch_head

_ATTN = "attention.self."


class Bert:
    causal = False

    def __init__(self, folder, label: str | None = None):
        folder = Path(folder)
        self.folder, self.label = folder, label or str(folder)
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise MMError(f"BERT model folder {folder} has no readable config.json")
        config = file_headers.json_file(config_file, "model config")
        if not isinstance(config, dict):
            raise MMError(f"model config {config_file} is not a JSON object")
        if (folder / "model.safetensors").is_file():
            self.tensors = SafetensorsFile(folder / "model.safetensors")
        elif (folder / "pytorch_model.bin").is_file():
            self.tensors = StateDict(load_torch_file(folder / "pytorch_model.bin"),
                                     folder / "pytorch_model.bin")
        else:
            raise MMError(f"no model.safetensors or pytorch_model.bin in {folder}")
        self.path = self.tensors.path
        word = next((n for n in self.tensors.names()
                     if n.endswith("embeddings.word_embeddings.weight")), None)
        if word is None:
            raise MMError(f"{self.path}: unsupported checkpoint, no "
                          "'embeddings.word_embeddings.weight' tensor")
        self.prefix = word[:-len("embeddings.word_embeddings.weight")]
        try:
            self.n_layer = int(config["num_hidden_layers"])
            self.n_head = int(config["num_attention_heads"])
            self.d_model = int(config["hidden_size"])
        except (KeyError, TypeError, ValueError) as e:
            raise MMError(f"{config_file}: missing or bad BERT setting {e}") from None
        self.n_kv_head = self.n_head
        self.head_dim = self.d_model // self.n_head
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        positions = self.prefix + "embeddings.position_embeddings.weight"
        self.max_tokens = self.tensors.shape(positions)[0]
        act = config.get("hidden_act", "gelu")
        if act not in ("gelu", "gelu_new"):
            raise MMError(f"{config_file}: activation '{act}' is not supported (gelu is)")
        self.gelu = "erf" if act == "gelu" else "tanh"

    def encode(self, text, limit):
        """[CLS] wordpieces [SEP], at most `limit` tokens (the [SEP] is kept)."""
        ids, strings = tokenise.bert_wordpiece(str(self.folder)).encode(text)
        if len(ids) > limit:
            ids, strings = ids[:limit - 1] + ids[-1:], strings[:limit - 1] + strings[-1:]
        return ids, strings

    # --- weights ------------------------------------------------------------------------------
    def _get(self, name, **kw):
        return self.tensors.get(self.prefix + name, **kw)

    def layer_weights(self, layer) -> dict:
        """One block's weights in nn.Linear layout (out x in)."""
        p = f"encoder.layer.{layer}."
        w = {}
        for key, name in (("q", _ATTN + "query"), ("k", _ATTN + "key"), ("v", _ATTN + "value"),
                          ("o", "attention.output.dense"), ("fc", "intermediate.dense"),
                          ("fc_out", "output.dense")):
            w[key] = self._get(p + name + ".weight")
            w[key + "_b"] = self._get(p + name + ".bias")
        for key, name in (("ln_attn", "attention.output.LayerNorm"),
                          ("ln_out", "output.LayerNorm")):
            w[key] = self._get(p + name + ".weight")
            w[key + "_b"] = self._get(p + name + ".bias")
        return w

    def embed(self, ids):
        x = (self._get("embeddings.word_embeddings.weight", rows=ids)
             + self._get("embeddings.position_embeddings.weight", rows=np.arange(len(ids)))
             + self._get("embeddings.token_type_embeddings.weight", rows=[0]))
        return layers.layer_norm(x, self._get("embeddings.LayerNorm.weight"),
                                 self._get("embeddings.LayerNorm.bias"), self.eps)

    def head_weights(self, w, head) -> dict:
        rows = slice(head * self.head_dim, (head + 1) * self.head_dim)
        out = {}
        for name in "QKV":
            out["w" + name] = w[name.lower()][rows].T.copy()
            out["b" + name] = w[name.lower() + "_b"][rows].copy()
        out["wO"] = w["o"][:, rows].T.copy()
        out["bO"] = w["o_b"].copy()
        return out

    # --- numpy forward ------------------------------------------------------------------------
    def forward(self, ids, n_layers, progress=None):
        """The output of blocks 0..n_layers-1 (the input of block n_layers)."""
        x = self.embed(ids)
        for l in range(n_layers):
            if progress:
                progress(l / (n_layers + 1), f"layer {l}")
            w = self.layer_weights(l)
            q, k, v = (layers.split_heads(x @ w[n].T + w[n + "_b"], self.n_head) for n in "qkv")
            context = layers.merge_heads(layers.attention_weights(q, k, False) @ v)
            a = layers.layer_norm(context @ w["o"].T + w["o_b"] + x, w["ln_attn"],
                                  w["ln_attn_b"], self.eps)
            f = layers.gelu(a @ w["fc"].T + w["fc_b"], self.gelu)
            x = layers.layer_norm(f @ w["fc_out"].T + w["fc_out_b"] + a, w["ln_out"],
                                  w["ln_out_b"], self.eps)
        return x

    def capture_numpy(self, ids, layer, head, progress):
        inp = self.forward(ids, layer, progress)
        progress(layer / (layer + 1), f"layer {layer} head {head}")
        hw = self.head_weights(self.layer_weights(layer), head)
        q, k, v = (inp @ hw["w" + n] + hw["b" + n] for n in "QKV")
        attn = layers.attention_weights(q, k, False)
        head_out = attn @ v
        return dict(hw, input=inp, Q=q, K=k, V=v, attn=attn, head_out=head_out,
                    out=head_out @ hw["wO"])

    # --- torch forward (written separately from the numpy one, as a check on it) -------------
    def capture_torch(self, ids, layer, head, progress):
        import torch
        import torch.nn.functional as F

        n, d = len(ids), self.d_model
        with torch.no_grad():
            emb = {k: torch.from_numpy(self._get("embeddings." + k)) for k in (
                "word_embeddings.weight", "position_embeddings.weight",
                "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias")}
            x = (F.embedding(torch.tensor(ids), emb["word_embeddings.weight"])
                 + emb["position_embeddings.weight"][:n] + emb["token_type_embeddings.weight"][0])
            x = F.layer_norm(x, (d,), emb["LayerNorm.weight"], emb["LayerNorm.bias"], self.eps)
            gelu = "none" if self.gelu == "erf" else "tanh"
            for l in range(layer + 1):
                progress(l / (layer + 1), f"layer {l}")
                w = {k: torch.from_numpy(v) for k, v in self.layer_weights(l).items()}
                q, k, v = (F.linear(x, w[c], w[c + "_b"]).view(n, self.n_head, -1).transpose(0, 1)
                           for c in "qkv")
                if l == layer:
                    break
                context = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, d)
                a = F.layer_norm(F.linear(context, w["o"], w["o_b"]) + x, (d,), w["ln_attn"],
                                 w["ln_attn_b"], self.eps)
                f = F.gelu(F.linear(a, w["fc"], w["fc_b"]), approximate=gelu)
                x = F.layer_norm(F.linear(f, w["fc_out"], w["fc_out_b"]) + a, (d,), w["ln_out"],
                                 w["ln_out_b"], self.eps)
            return torch_head(x, q[head], k[head], v[head], w["o"].T, head, causal=False,
                              weights=self.head_weights({k: t.numpy() for k, t in w.items()},
                                                        head))


@lru_cache(maxsize=2)
def _open(folder: str, label: str, stamp) -> Bert:
    return Bert(folder, label)


def open_folder(folder, label: str | None = None) -> Bert:
    folder = Path(folder)
    if not folder.is_dir():
        raise MMError(f"BERT model folder {folder} does not exist")
    stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(folder.iterdir())
                  if f.is_file())
    return _open(str(folder), label or str(folder), stamp)


def open_packaged() -> Bert:
    return open_folder(sources.package_file(sources.MINILM_DIR), "minilm")
