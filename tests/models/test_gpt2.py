"""GPT-2 loading in every file layout we accept, on tiny random models written here, checked
against a plain per-head numpy GPT-2 written independently below."""

import json
import math
import os

import numpy as np
import pytest

from mm_blender.errors import MMError
from mm_blender.models import capture_head, sources

N_LAYER, N_HEAD, D, N_POS, VOCAB = 2, 2, 128, 48, 50257  # head dim 64, like all of GPT-2
TEXT = "The lighthouse keeper kept a ledger of every ship that passed, row by row."


def tiny_gpt2(seed=0, bias=True):
    """Weights in GPT-2's Conv1D layout (y = x @ W + b)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    w = {"wte.weight": normal(VOCAB, D, scale=0.5), "wpe.weight": normal(N_POS, D, scale=0.3),
         "ln_f.weight": 1 + normal(D, scale=0.1), "ln_f.bias": normal(D, scale=0.1)}
    for l in range(N_LAYER):
        p = f"h.{l}."
        for name, shape in (("attn.c_attn", (D, 3 * D)), ("attn.c_proj", (D, D)),
                            ("mlp.c_fc", (D, 4 * D)), ("mlp.c_proj", (4 * D, D))):
            w[p + name + ".weight"] = normal(*shape, scale=1.5 / math.sqrt(shape[0]))
            if bias:
                w[p + name + ".bias"] = normal(shape[1], scale=0.1)
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"] = 1 + normal(D, scale=0.1)
            if bias:
                w[p + ln + ".bias"] = normal(D, scale=0.1)
    return w


def reference_head(w, ids, layer, head, gelu):
    """GPT-2 by the book, float64, one head at a time, biases zero where absent."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    zero = np.zeros(4 * D)

    def ln(x, name):
        mu = x.mean(-1, keepdims=True)
        sd = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
        return (x - mu) / sd * w[name + ".weight"] + w.get(name + ".bias", zero[:D])

    def act(x):
        if gelu == "erf":
            return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    n, hd = len(ids), D // N_HEAD
    x = w["wte.weight"][ids] + w["wpe.weight"][:n]
    for l in range(layer + 1):
        p = f"h.{l}."
        a = ln(x, p + "ln_1")
        qkv = a @ w[p + "attn.c_attn.weight"] + w.get(p + "attn.c_attn.bias", zero[:3 * D] * 0)
        outs = []
        for h in range(N_HEAD):
            q, k, v = (qkv[:, i * D + h * hd: i * D + (h + 1) * hd] for i in range(3))
            s = q @ k.T / math.sqrt(hd)
            s[np.triu_indices(n, 1)] = -np.inf
            attn = np.exp(s - s.max(1, keepdims=True))
            attn /= attn.sum(1, keepdims=True)
            outs.append(attn @ v)
            if l == layer and h == head:
                wo = w[p + "attn.c_proj.weight"][h * hd:(h + 1) * hd]
                return dict(input=a, Q=q, K=k, V=v, attn=attn, head_out=attn @ v,
                            out=attn @ v @ wo, wO=wo)
        x = x + np.concatenate(outs, 1) @ w[p + "attn.c_proj.weight"] \
            + w.get(p + "attn.c_proj.bias", zero[:D])
        m = ln(x, p + "ln_2")
        x = x + act(m @ w[p + "mlp.c_fc.weight"] + w.get(p + "mlp.c_fc.bias", zero)) \
            @ w[p + "mlp.c_proj.weight"] + w.get(p + "mlp.c_proj.bias", zero[:D])


def check_against_reference(model, weights, gelu, backends=("numpy", "torch")):
    for backend in backends:
        if backend == "torch":
            pytest.importorskip("torch")
        for layer, head in ((0, 1), (1, 0)):
            cap = capture_head(model, layer, head, TEXT, tokens=40, backend=backend)
            ref = reference_head(weights, cap.info["token_ids"], layer, head, gelu)
            assert cap.causal and cap.info["backend"] == backend
            for name, value in ref.items():
                np.testing.assert_allclose(getattr(cap, name), value, atol=1e-4, rtol=1e-4,
                                           err_msg=f"{model} {backend} L{layer} H{head} {name}")
            # the spread of attention is real, not uniform: the check above means something
            assert cap.attn[1:].max() > 0.5


def config(gelu="gelu_new"):
    return {"model_type": "gpt2", "n_layer": N_LAYER, "n_head": N_HEAD, "n_embd": D,
            "n_positions": N_POS, "activation_function": gelu, "layer_norm_epsilon": 1e-5}


@pytest.fixture(scope="module")
def weights():
    return tiny_gpt2()


def test_hf_folder_safetensors_without_prefix(tmp_path, write_safetensors, weights):
    write_safetensors(tmp_path / "model.safetensors", weights)
    (tmp_path / "config.json").write_text(json.dumps(config()))
    check_against_reference(str(tmp_path), weights, "tanh")


def test_safetensors_file_with_transformer_prefix_and_no_config(tmp_path, write_safetensors,
                                                                 weights):
    path = tmp_path / "lm_head_model.safetensors"
    write_safetensors(path, {"transformer." + k: v for k, v in weights.items()}
                      | {"lm_head.weight": weights["wte.weight"]})
    # no config.json: heads default to width / 64, the activation to GPT-2's tanh GELU
    check_against_reference(str(path), weights, "tanh", backends=("numpy",))


def test_hf_cache_lookup(tmp_path, write_safetensors, monkeypatch, weights):
    hub = tmp_path / "hf" / "hub" / "models--gpt2"
    blob = hub / "blobs" / "0123abcd"
    blob.parent.mkdir(parents=True)
    write_safetensors(blob, {"transformer." + k: v for k, v in weights.items()})
    snapshot = hub / "snapshots" / "e7da7f2"
    snapshot.mkdir(parents=True)
    os.symlink(os.path.relpath(blob, snapshot), snapshot / "model.safetensors")
    (snapshot / "config.json").write_text(json.dumps(config()))
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text("e7da7f2")
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    check_against_reference("gpt2", weights, "tanh", backends=("numpy",))
    cap = capture_head("gpt2", 1, 1, TEXT, tokens=10)
    assert cap.model == "gpt2" and cap.info["weights"].endswith("model.safetensors")
    assert cap.tokens[:3] == ["The", " lighthouse", " keeper"]


def test_gpt2_not_in_cache_says_where_and_how(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(MMError) as e:
        capture_head("gpt2-medium", 0, 0)
    message = str(e.value)
    assert str(tmp_path / "hf" / "hub" / "models--gpt2-medium") in message
    assert "huggingface-cli download gpt2-medium" in message
    assert "smollm2" in message and "always work" in message


def nanogpt_checkpoint(weights, bias=True):
    """A nanoGPT ckpt.pt after torch.compile: nn.Linear layout, `_orig_mod.` prefix."""
    torch = pytest.importorskip("torch")
    state = {}
    for k, v in weights.items():
        if k.endswith(".weight") and v.ndim == 2 and k.startswith("h."):
            v = v.T  # Conv1D -> nn.Linear
        if not bias and k.endswith(".bias"):
            continue
        state["_orig_mod.transformer." + k] = torch.from_numpy(np.ascontiguousarray(v))
    state["_orig_mod.lm_head.weight"] = state["_orig_mod.transformer.wte.weight"]
    return {"model": state, "optimizer": {}, "iter_num": 5000, "best_val_loss": 3.1,
            "model_args": dict(n_layer=N_LAYER, n_head=N_HEAD, n_embd=D, block_size=N_POS,
                               bias=bias, vocab_size=VOCAB, dropout=0.0),
            "config": {"dataset": "openwebtext"}}


@pytest.mark.parametrize("bias", [True, False])
def test_nanogpt_ckpt(tmp_path, bias):
    torch = pytest.importorskip("torch")
    weights = tiny_gpt2(seed=3, bias=bias)
    torch.save(nanogpt_checkpoint(weights, bias), tmp_path / "ckpt.pt")
    check_against_reference(str(tmp_path / "ckpt.pt"), weights, "erf")  # nanoGPT: nn.GELU()


def test_hf_pytorch_model_bin(tmp_path, weights):
    torch = pytest.importorskip("torch")
    torch.save({k: torch.from_numpy(v) for k, v in weights.items()},
               tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(config("gelu")))
    check_against_reference(str(tmp_path), weights, "erf", backends=("numpy",))


def test_torch_files_without_torch_say_so(tmp_path, monkeypatch):
    (tmp_path / "ckpt.pt").write_bytes(b"whatever")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(MMError, match="ckpt.pt needs PyTorch"):
        capture_head(str(tmp_path / "ckpt.pt"), 0, 0)


def test_corrupt_ckpt(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "ckpt.pt").write_bytes(b"not a pickle at all")
    with pytest.raises(MMError, match="ckpt.pt: cannot load"):
        capture_head(str(tmp_path / "ckpt.pt"), 0, 0)


def test_character_level_nanogpt_is_refused(tmp_path, write_safetensors, weights):
    small = dict(weights, **{"wte.weight": weights["wte.weight"][:65]})
    write_safetensors(tmp_path / "model.safetensors", small)
    (tmp_path / "config.json").write_text(json.dumps(config()))
    with pytest.raises(MMError, match="vocabulary has 65 tokens"):
        capture_head(str(tmp_path), 0, 0, TEXT, tokens=40)


def test_unsupported_checkpoint(tmp_path, write_safetensors):
    write_safetensors(tmp_path / "model.safetensors", {"encoder.weight": np.zeros((2, 2))})
    with pytest.raises(MMError, match="unsupported checkpoint"):
        capture_head(str(tmp_path), 0, 0)


def test_ranges_and_token_limit(tmp_path, write_safetensors, weights):
    write_safetensors(tmp_path / "model.safetensors", weights)
    (tmp_path / "config.json").write_text(json.dumps(config()))
    with pytest.raises(MMError, match=r"layer 2 out of range: .* has 2 layers \(0-1\)"):
        capture_head(str(tmp_path), 2, 0, TEXT)
    with pytest.raises(MMError, match=r"head 2 out of range: .* has 2 heads per layer \(0-1\)"):
        capture_head(str(tmp_path), 0, 2, TEXT)
    with pytest.raises(MMError, match="reads at most 48 tokens"):
        capture_head(str(tmp_path), 0, 0, TEXT, tokens=49)


def test_gpt2_family_names_are_presets():
    assert {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"} <= set(sources.GPT2_FAMILY)
