"""The attention presets draw a real head: the values our evaluator computes from the
captured leaves (with the rope epilogue and the bias row) equal the model's own Q, K, attention
and output; missing model data gives one clear error."""
from pathlib import Path

import numpy as np
import pytest

from mm_blender import api
from mm_blender.core import spec as specmod
from mm_blender.core.evaluate import evaluate, rope
from mm_blender.core.expr import walk
from mm_blender.errors import MMError
from mm_blender.models.leaves import capture_leaves, head_arrays, load_capture, role_of


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("captures")


@pytest.fixture(autouse=True)
def _isolated_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    monkeypatch.setenv("MM_BLENDER_USER_CACHE", str(cache_dir))


def _results(spec, cap):
    v = evaluate(spec, capture_leaves(spec, capture=cap))
    return v, {node.name: v.of(node) for node in walk(spec.tree)}


@pytest.mark.parametrize("name", ["attention_smollm2_l5h4", "attention_smollm2_l0h2",
                                  "attention_minilm"])
def test_drawn_expression_equals_the_models_head(name):
    spec = api.load_spec(name)
    cap = load_capture(spec)
    _, r = _results(spec, cap)
    np.testing.assert_allclose(r["Q"], cap.Q, atol=1e-4)
    np.testing.assert_allclose(r["K_t"], cap.K.T, atol=1e-4)
    np.testing.assert_allclose(r["V"], cap.V, atol=1e-4)
    np.testing.assert_allclose(r["attn"], cap.attn, atol=1e-4)
    np.testing.assert_allclose(r["out"], cap.out, atol=1e-4)
    np.testing.assert_allclose(r["attn"].sum(axis=1), 1.0, atol=1e-5)
    upper = np.triu(r["attn"], 1)
    if cap.causal:
        assert np.abs(upper).max() == 0.0
    else:   # MiniLM is bidirectional: tokens attend to later tokens too
        assert np.abs(upper).max() > 1e-3


def test_decoding_row_is_the_last_token():
    spec = api.load_spec("attention_decoding")
    cap = load_capture(spec)
    _, r = _results(spec, cap)
    assert r["Q"].shape == (1, 64)
    np.testing.assert_allclose(r["Q"], cap.Q[-1:], atol=1e-4)   # rope at position T-1
    np.testing.assert_allclose(r["attn"], cap.attn[-1:], atol=1e-5)
    np.testing.assert_allclose(r["out"], cap.out[-1:], atol=1e-4)


def test_bias_is_drawn_as_ones_column_and_bias_row():
    spec = api.load_spec("attention_minilm")
    cap = load_capture(spec)
    arrays = head_arrays(cap, bias=True)
    assert np.all(arrays["input"][:, -1] == 1.0)
    np.testing.assert_array_equal(arrays["wQ"][-1], cap.bQ)
    np.testing.assert_array_equal(arrays["wK_t"][:, -1], cap.bK)
    assert np.abs(cap.bQ).max() > 0   # BERT has biases: dropping them would change Q
    np.testing.assert_allclose(arrays["input"] @ arrays["wQ"], cap.input @ cap.wQ + cap.bQ,
                               atol=1e-4)


def test_rope_rows_are_the_last_positions():
    x = np.random.default_rng(0).normal(size=(5, 8))
    full = rope(x, 10000.0, 5)
    np.testing.assert_allclose(rope(x[-2:], 10000.0, 5), full[-2:], atol=1e-12)
    np.testing.assert_allclose(full[0], x[0])   # position 0 is not rotated
    # a rotation keeps each pair's length
    np.testing.assert_allclose(np.hypot(full[:, :4], full[:, 4:]), np.hypot(x[:, :4], x[:, 4:]))


def test_roles():
    assert role_of("input_t_0_5") == "input_t"
    assert role_of("input_0_5") == "input"
    assert role_of("wQ_5_4") == "wQ"
    assert role_of("K_t") == "K_t"
    assert role_of("weights") is None


def test_declared_shape_must_match_the_model(tmp_path):
    text = Path(api.load_spec("attention_minilm").origin).read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("h = 32\nw = 384", "h = 32\nw = 380"))
    spec = specmod.load_toml(bad)
    with pytest.raises(MMError, match=r"'wO' is declared 32x380 but .* gives 32x384"):
        capture_leaves(spec)


def test_model_leaf_without_model_table(tmp_path):
    spec = specmod.from_dict({"expr": "input @ wQ", "matrix": {
        "input": {"h": 4, "w": 3, "init": "model"}, "wQ": {"h": 3, "w": 2}}}, origin="x.toml")
    with pytest.raises(MMError, match="init 'model' but no data"):
        evaluate(spec)


def test_missing_gpt2_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    spec = api.load_spec("attention_l5h4")
    with pytest.raises(MMError) as info:
        api.plan_spec(spec)
    message = str(info.value)
    assert str(tmp_path / "hf") in message and "smollm2" in message.lower()


def test_saved_capture_file_is_used(tmp_path):
    spec = api.load_spec("attention_smollm2_l0h2")
    cap = load_capture(spec)
    path = cap.save(tmp_path / "head.npz")
    text = Path(spec.origin).read_text().replace('model = "smollm2"', f'capture = "{path}"')
    alt = tmp_path / "from_capture.toml"
    alt.write_text(text)
    spec2 = specmod.load_toml(alt)
    leaves = capture_leaves(spec2)
    np.testing.assert_array_equal(leaves["input"], cap.input)


def test_lora_presets_are_real_low_rank_factors():
    for name, key, rank in (("lora_single", "wQK", 4), ("lora_head", "wQ", 8)):
        spec = api.load_spec(name)
        cap = load_capture(spec)
        _, r = _results(spec, cap)
        real = cap.wQ.astype(np.float64)
        if key == "wQK":   # the head's query-key circuit
            real = real @ cap.wK.T.astype(np.float64)
        approx = r[key].astype(np.float64)
        assert np.linalg.matrix_rank(approx, tol=1e-4 * np.abs(real).max()) == rank
        # Eckart-Young: the error of the best rank-r approximation is the tail of the spectrum
        s = np.linalg.svd(real, compute_uv=False)
        np.testing.assert_allclose(np.linalg.norm(approx - real), np.sqrt((s[rank:] ** 2).sum()),
                                   rtol=1e-3)


def test_lora_factor_ranks_must_agree(tmp_path):
    text = Path(api.load_spec("lora_single").origin).read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("h = 4\nw = 576", "h = 5\nw = 576"))
    with pytest.raises(MMError):
        specmod.load_toml(bad)   # 576x4 @ 5x64 is a shape mismatch, caught before any data


def test_capture_cache_survives_across_cli_runs(tmp_path):
    """bpy_env points Blender's cache at a per-run folder, but captures are cached in the
    user's cache folder, so later runs reuse them instead of recomputing."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in ("MM_BLENDER_USER_CACHE", "BLENDER_USER_RESOURCES",
                        "BLENDER_USER_EXTENSIONS", "MM_BLENDER_RUNTIME_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "user_cache")
    code = ("from mm_blender import bpy_env; bpy_env.prepare(); "
            "from mm_blender.models.leaves import load_capture, _cache_dir; "
            "from mm_blender import api; load_capture(api.load_spec('attention_smollm2_l0h2')); "
            "print(_cache_dir())")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert Path(out) == tmp_path / "user_cache" / "mm_blender" / "captures"
    assert len(list(Path(out).glob("*.npz"))) == 1
