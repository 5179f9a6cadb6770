"""GPT-2 family checkpoints: Hugging Face snapshots (model.safetensors / pytorch_model.bin,
Conv1D layout, optional `transformer.` prefix) and nanoGPT ckpt.pt (nn.Linear layout,
optional `_orig_mod.` prefix). One attention head from a real forward pass, in numpy or torch."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core import file_headers
from ..errors import MMError
from . import layers, sources, tokenise
from .checkpoint_files import SafetensorsFile, StateDict, load_torch_file
from .torch_head import torch_head


class GPT2:
    causal = True

    def __init__(self, label: str, tensors, *, config: dict | None = None,
                 tokenizer_folder: str | None = None, gelu: str = "tanh"):
        self.label = label
        self.tensors = tensors
        self.path = tensors.path
        self.tokenizer_folder = tokenizer_folder
        self.gelu = gelu
        config = config or {}
        wte = next((n for n in tensors.names() if n.endswith("wte.weight")), None)
        if wte is None:
            raise MMError(f"{self.path}: unsupported checkpoint, no 'wte.weight' tensor (GPT-2 "
                          "checkpoints have wte, wpe and h.N.attn.c_attn tensors)")
        self.prefix = wte[:-len("wte.weight")]
        found = {int(m.group(1)) for n in tensors.names()
                 if (m := re.match(re.escape(self.prefix) + r"h\.(\d+)\.", n))}
        self.n_layer = len(found)
        if found != set(range(self.n_layer)) or self.n_layer == 0:
            raise MMError(f"{self.path}: unsupported checkpoint, layers h.N are missing or not "
                          f"numbered 0..N-1 (found {sorted(found)[:10]})")
        self.vocab_size, self.d_model = tensors.shape(wte)
        self.max_tokens = tensors.shape(self.prefix + "wpe.weight")[0]
        self.n_head = int(config.get("n_head") or max(1, self.d_model // 64))  # GPT-2: hd 64
        self.n_kv_head = self.n_head
        if self.d_model % self.n_head:
            raise MMError(f"{self.path}: width {self.d_model} is not divisible by "
                          f"{self.n_head} heads")
        self.head_dim = self.d_model // self.n_head
        self.eps = float(config.get("layer_norm_epsilon", 1e-5))
        attn_shape = tensors.shape(self._name(0, "attn.c_attn.weight"))
        if attn_shape == (self.d_model, 3 * self.d_model):
            self.linear_layout = False
        elif attn_shape == (3 * self.d_model, self.d_model):
            self.linear_layout = True
        else:
            raise MMError(f"{self.path}: tensor '{self._name(0, 'attn.c_attn.weight')}' has shape "
                          f"{attn_shape}, expected [{self.d_model}, {3 * self.d_model}]")

    def _name(self, layer, part):
        return f"{self.prefix}h.{layer}.{part}"

    def encode(self, text, limit):
        """Token ids and strings of `text`, at most `limit` of them."""
        ids, strings = tokenise.gpt2_bpe(self.tokenizer_folder).encode(text)
        ids, strings = ids[:limit], strings[:limit]
        if ids and max(ids) >= self.vocab_size:
            raise MMError(f"{self.path}: its vocabulary has {self.vocab_size} tokens, fewer than "
                          "GPT-2's BPE needs (a character-level nanoGPT model is not supported)")
        return ids, strings

    # --- weights --------------------------------------------------------------------------
    def _optional(self, name, size):
        return self.tensors.get(name) if name in self.tensors else np.zeros(size, np.float32)

    def layer_weights(self, layer) -> dict:
        """One block's weights in Conv1D layout (y = x @ W + b), biases zero when absent."""
        d = self.d_model
        w = {}
        for key, part, size in (("attn", "attn.c_attn", 3 * d), ("proj", "attn.c_proj", d),
                                ("fc", "mlp.c_fc", 4 * d), ("fc_out", "mlp.c_proj", d)):
            weight = self.tensors.get(self._name(layer, part + ".weight"))
            w[key] = weight.T.copy() if self.linear_layout else weight
            w[key + "_b"] = self._optional(self._name(layer, part + ".bias"), size)
        if w["fc"].shape[0] != d:  # c_fc is d x 4d in Conv1D layout whatever the MLP width
            raise MMError(f"{self.path}: tensor '{self._name(layer, 'mlp.c_fc.weight')}' does not "
                          f"match width {d}")
        for ln in ("ln_1", "ln_2"):
            w[ln] = self.tensors.get(self._name(layer, ln + ".weight"))
            w[ln + "_b"] = self._optional(self._name(layer, ln + ".bias"), d)
        return w

    def embed(self, ids):
        return (self.tensors.get(self.prefix + "wte.weight", rows=ids)
                + self.tensors.get(self.prefix + "wpe.weight", rows=np.arange(len(ids))))

    def head_weights(self, w, head) -> dict:
        d, hd = self.d_model, self.head_dim
        cols = slice(head * hd, (head + 1) * hd)
        out = {}
        for i, name in enumerate("QKV"):
            out["w" + name] = w["attn"][:, i * d:(i + 1) * d][:, cols].copy()
            out["b" + name] = w["attn_b"][i * d:(i + 1) * d][cols].copy()
        out["wO"] = w["proj"][cols, :].copy()
        out["bO"] = w["proj_b"].copy()
        return out

    # --- numpy forward ----------------------------------------------------------------------
    def forward(self, ids, n_layers, progress=None):
        """The residual stream after blocks 0..n_layers-1 (the input of block n_layers)."""
        x = self.embed(ids)
        for l in range(n_layers):
            if progress:
                progress(l / (n_layers + 1), f"layer {l}")
            w = self.layer_weights(l)
            a = layers.layer_norm(x, w["ln_1"], w["ln_1_b"], self.eps)
            q, k, v = np.split(a @ w["attn"] + w["attn_b"], 3, axis=-1)
            q, k, v = (layers.split_heads(t, self.n_head) for t in (q, k, v))
            context = layers.merge_heads(layers.attention_weights(q, k, True) @ v)
            x = x + context @ w["proj"] + w["proj_b"]
            m = layers.layer_norm(x, w["ln_2"], w["ln_2_b"], self.eps)
            x = x + layers.gelu(m @ w["fc"] + w["fc_b"], self.gelu) @ w["fc_out"] + w["fc_out_b"]
        return x

    def capture_numpy(self, ids, layer, head, progress):
        x = self.forward(ids, layer, progress)
        progress(layer / (layer + 1), f"layer {layer} head {head}")
        w = self.layer_weights(layer)
        hw = self.head_weights(w, head)
        inp = layers.layer_norm(x, w["ln_1"], w["ln_1_b"], self.eps)
        q, k, v = (inp @ hw["w" + n] + hw["b" + n] for n in "QKV")
        attn = layers.attention_weights(q, k, True)
        head_out = attn @ v
        return dict(hw, input=inp, Q=q, K=k, V=v, attn=attn, head_out=head_out,
                    out=head_out @ hw["wO"])

    # --- torch forward (written separately from the numpy one, as a check on it) -------------
    def capture_torch(self, ids, layer, head, progress):
        import torch
        import torch.nn.functional as F

        def t(a):
            return torch.from_numpy(np.ascontiguousarray(a))

        gelu = "tanh" if self.gelu == "tanh" else "none"
        with torch.no_grad():
            x = t(self.embed(ids))
            for l in range(layer + 1):
                progress(l / (layer + 1), f"layer {l}")
                w = {k: t(v) for k, v in self.layer_weights(l).items()}
                a = F.layer_norm(x, (self.d_model,), w["ln_1"], w["ln_1_b"], self.eps)
                qkv = F.linear(a, w["attn"].T, w["attn_b"])
                q, k, v = qkv.view(len(ids), 3, self.n_head, self.head_dim).permute(1, 2, 0, 3)
                if l == layer:
                    break
                context = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                x = x + F.linear(context.transpose(0, 1).reshape(len(ids), -1), w["proj"].T,
                                 w["proj_b"])
                m = F.layer_norm(x, (self.d_model,), w["ln_2"], w["ln_2_b"], self.eps)
                x = x + F.linear(F.gelu(F.linear(m, w["fc"].T, w["fc_b"]), approximate=gelu),
                                 w["fc_out"].T, w["fc_out_b"])
            return torch_head(a, q[head], k[head], v[head], w["proj"], head, causal=True,
                              weights=self.head_weights({k: v.numpy() for k, v in w.items()}, head))


# --- opening ------------------------------------------------------------------------------------

def _read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        return {}
    config = file_headers.json_file(path, "model config")
    if not isinstance(config, dict):
        raise MMError(f"model config {path} is not a JSON object")
    return config


def _gelu_of(config):
    return "erf" if config.get("activation_function") == "gelu" else "tanh"


def open_hf(name: str) -> GPT2:
    return open_path(sources.find_hf_snapshot(name), label=name)


def open_path(path, label: str | None = None) -> GPT2:
    """A folder (model.safetensors or pytorch_model.bin, + config.json), a .safetensors file,
    a .bin state dict or a nanoGPT ckpt.pt."""
    path = Path(path)
    label = label or str(path)
    if path.is_dir():
        for weights in sources.WEIGHT_FILES:
            if (path / weights).is_file():
                return open_path(path / weights, label)
        raise MMError(f"no {' or '.join(sources.WEIGHT_FILES)} in folder {path}")
    if not path.is_file():
        raise MMError(f"weights file {path} does not exist")
    config_file = path.parent / "config.json"
    stamps = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in (path, config_file)
                   if f.is_file())
    return _open(str(path), label, stamps)


@lru_cache(maxsize=2)
def _open(path: str, label: str, stamps) -> GPT2:
    path = Path(path)
    config = _read_config(path.parent)
    folder = str(path.parent)
    if path.suffix == ".safetensors":
        return GPT2(label, SafetensorsFile(path), config=config, tokenizer_folder=folder,
                    gelu=_gelu_of(config))
    loaded = load_torch_file(path)
    if isinstance(loaded, dict) and "model" in loaded and isinstance(loaded["model"], dict):
        args = loaded.get("model_args") or {}
        state = {k.removeprefix("_orig_mod."): v for k, v in loaded["model"].items()}
        # nanoGPT uses nn.GELU() (the erf form) and LayerNorm eps 1e-5
        return GPT2(label, StateDict(state, path), config={"n_head": args.get("n_head")},
                    tokenizer_folder=None, gelu="erf")
    if isinstance(loaded, dict):
        state = {k.removeprefix("_orig_mod."): v for k, v in loaded.items()}
        return GPT2(label, StateDict(state, path), config=config, tokenizer_folder=folder,
                    gelu=_gelu_of(config))
    raise MMError(f"{path}: unsupported checkpoint (not a state dict or a nanoGPT ckpt)")
