"""Values: every epilogue against an independent numpy implementation, NaN/inf carried, seeded
leaves reproducible, and the attention_gaussian preset against a numpy attention head."""

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from mm_blender.core import evaluate as ev
from mm_blender.core.evaluate import apply_epilogue, evaluate, leaf_values
from mm_blender.core.spec import EPILOGUES, from_dict, load_toml
from mm_blender.errors import MMError

PRESETS = Path(__file__).resolve().parents[2] / "presets"

_erf = np.vectorize(math.erf)


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _causal_softmax(x):
    h, w = x.shape
    out = np.zeros_like(x)
    for i in range(h):
        row = x[i, : i + 1]
        e = np.exp(row - row.max())
        out[i, : i + 1] = e / e.sum()
    return out


def _layernorm(x):
    return (x - x.mean()) / np.sqrt(x.var() + 1e-5)


def _rope_complex(x, theta=10000.0):
    """Rotary embedding written as complex rotation: dims d and d + n/2 are the real and
    imaginary parts, row r is position r."""
    n = x.shape[1]
    half = n // 2
    z = x[:, :half] + 1j * x[:, half:2 * half]
    freq = theta ** (-np.arange(half) * 2.0 / n)
    z = z * np.exp(1j * np.arange(x.shape[0])[:, None] * freq[None, :])
    return np.concatenate([z.real, z.imag, x[:, 2 * half:]], axis=1)   # odd width: last as is


# independent numpy epilogues (x float64, k the contraction size)
REFERENCE = {
    "none": lambda x, k: x,
    "relu": lambda x, k: np.maximum(x, 0.0),
    "gelu": lambda x, k: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "sigmoid": lambda x, k: 1.0 / (1.0 + np.exp(-x)),
    "silu": lambda x, k: x * (1.0 / (1.0 + np.exp(-x))),
    "tanh": lambda x, k: np.tanh(x),
    "x**2": lambda x, k: x ** 2,
    "x/k": lambda x, k: x / k,
    "x/sqrt(k)": lambda x, k: x / math.sqrt(k),
    "layernorm": lambda x, k: _layernorm(x),
    "softmax": lambda x, k: _softmax(x),
    "softmax(x/sqrt(k))": lambda x, k: _softmax(x / math.sqrt(k)),
    "softmax(tril(x/sqrt(k)))": lambda x, k: _causal_softmax(x / math.sqrt(k)),
    "rope": lambda x, k: _rope_complex(x),
    "rope_t": lambda x, k: _rope_complex(x.T).T,
}


def test_reference_covers_every_epilogue():
    assert set(REFERENCE) == set(EPILOGUES)


def _two(h=5, k=7, w=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1.5, (h, k)).astype(np.float32),
            rng.normal(0, 1.5, (k, w)).astype(np.float32))


def _spec(epilogue="none", h=5, k=7, w=6, **extra):
    return from_dict({"expr": "A @ B",
                      "matrix": {"A": {"h": h, "w": k}, "B": {"h": k, "w": w}},
                      "matmul": {"A @ B": {"epilogue": epilogue}}, **extra})


@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_epilogue_through_evaluate(epilogue):
    a, b = _two()
    values = evaluate(_spec(epilogue), overrides={"A": a, "B": b})
    got = values.results[""]
    assert got.dtype == np.float32 and got.shape == (5, 6)
    want = REFERENCE[epilogue](a.astype(np.float64) @ b.astype(np.float64), 7)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_apply_epilogue_wide_range(epilogue):
    x = np.linspace(-6, 6, 48).reshape(6, 8) * np.random.default_rng(3).uniform(0.5, 1.5, (6, 8))
    got = apply_epilogue(x, epilogue, 16)
    np.testing.assert_allclose(got, REFERENCE[epilogue](x, 16), rtol=1e-6, atol=1e-6)


def test_softmax_rows_sum_to_one():
    x = np.random.default_rng(1).normal(0, 3, (9, 11))
    for epilogue in ("softmax", "softmax(x/sqrt(k))", "softmax(tril(x/sqrt(k)))"):
        out = apply_epilogue(x, epilogue, 4)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
        assert (out >= 0).all()


def test_causal_softmax_is_lower_triangular():
    x = np.random.default_rng(2).normal(0, 3, (7, 7))
    out = apply_epilogue(x, "softmax(tril(x/sqrt(k)))", 9)
    assert (np.triu(out, 1) == 0).all()
    assert (out[np.tril_indices(7)] > 0).all()
    assert out[0, 0] == pytest.approx(1.0)
    # a wide (decoding-style) matrix: row i sees columns 0..i
    wide = apply_epilogue(np.ones((2, 5)), "softmax(tril(x/sqrt(k)))", 1)
    np.testing.assert_allclose(wide, [[1, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]])


def test_softmax_is_stable_for_large_values():
    x = np.array([[1000.0, 1001.0, 999.0]])
    out = apply_epilogue(x, "softmax", 1)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, _softmax(x))


def test_layernorm_whole_matrix():
    x = np.random.default_rng(4).normal(3, 5, (6, 9))
    out = apply_epilogue(x, "layernorm", 1)
    assert out.mean() == pytest.approx(0, abs=1e-12)
    assert out.var() == pytest.approx(1, abs=1e-5)     # var / (var + eps)
    # over the whole matrix, not per row: rows keep their differences
    assert np.ptp(out.mean(axis=1)) > 0.1


def test_unknown_epilogue():
    with pytest.raises(MMError, match="unknown epilogue"):
        apply_epilogue(np.ones((2, 2)), "swish", 1)


def test_pointwise_part_for_partial_sums():
    assert ev.pointwise_part("gelu") == "gelu"
    assert ev.pointwise_part("softmax(x/sqrt(k))") == "x/sqrt(k)"
    assert ev.pointwise_part("softmax(tril(x/sqrt(k)))") == "x/sqrt(k)"
    assert ev.pointwise_part("layernorm") == "none"
    assert ev.pointwise_part("softmax") == "none"


# --------------------------------------------------------------------------------------------
# Expression trees


def test_chain_values_and_paths():
    rng = np.random.default_rng(5)
    a, b, c, d = (rng.normal(size=s).astype(np.float32) for s in ((3, 4), (4, 5), (5, 2), (2, 6)))
    spec = from_dict({"expr": "A @ B @ (C @ D)", "matrix": {
        "A": {"h": 3, "w": 4}, "B": {"h": 4, "w": 5}, "C": {"h": 5, "w": 2},
        "D": {"h": 2, "w": 6}}, "matmul": {"A @ B": {"epilogue": "relu"},
                                           "C @ D": {"epilogue": "tanh"}}})
    values = evaluate(spec, overrides={"A": a, "B": b, "C": c, "D": d})
    f = lambda m: m.astype(np.float64)
    ab = np.maximum(f(a) @ f(b), 0)
    cd = np.tanh(f(c) @ f(d))
    np.testing.assert_allclose(values.results["l"], ab, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values.results["r"], cd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values.results[""], ab @ cd, rtol=1e-5, atol=1e-5)
    assert values.of(spec.tree.left.left) is values.leaves["A"]
    assert len(list(values.all_arrays())) == 4 + 3


def test_override_shape_must_match():
    a, b = _two()
    with pytest.raises(MMError, match="'A' is 3x3 but the preset declares 5x7"):
        evaluate(_spec(), overrides={"A": np.ones((3, 3)), "B": b})


# --------------------------------------------------------------------------------------------
# NaN and inf are carried, never replaced, never crash


def test_nan_and_inf_carried():
    a, b = _two(h=4, k=3, w=5)
    a[1, 2] = np.nan
    a[2, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epilogue in EPILOGUES:
            out = evaluate(_spec(epilogue, h=4, k=3, w=5), overrides={"A": a, "B": b}).results[""]
            assert out.shape == (4, 5)
            if epilogue in ("none", "relu", "x**2", "x/k", "x/sqrt(k)", "tanh", "sigmoid"):
                assert np.isnan(out[1]).all()               # NaN in row 1 of A
                assert np.isfinite(out[[0, 3]]).all()       # clean rows stay clean
            if epilogue in ("none", "x/k", "x**2"):
                assert not np.isfinite(out[2]).any()        # inf times nonzero
    raw = evaluate(_spec(h=4, k=3, w=5), overrides={"A": a, "B": b}).results[""]
    assert np.isnan(raw).sum() >= 5


def test_nan_carried_by_relu():
    x = np.array([[np.nan, -1.0, 2.0]])
    out = apply_epilogue(x, "relu", 1)
    assert np.isnan(out[0, 0]) and out[0, 1] == 0 and out[0, 2] == 2


def test_softmax_row_with_inf_does_not_crash():
    x = np.array([[np.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = apply_epilogue(x, "softmax", 1)
    np.testing.assert_allclose(out[1], _softmax(x[1:])[0])


# --------------------------------------------------------------------------------------------
# Seeded leaves


def _random_spec(seed):
    return from_dict({"expr": "A @ B", "seed": seed, "matrix": {
        "A": {"h": 6, "w": 5, "init": "gaussian"}, "B": {"h": 5, "w": 4, "init": "uniform"}}})


def test_seeded_leaves_reproducible():
    one = leaf_values(_random_spec(3))
    two = leaf_values(_random_spec(3))
    for name in ("A", "B"):
        assert one[name].dtype == np.float32 and one[name].shape == two[name].shape
        np.testing.assert_array_equal(one[name], two[name])
    other = leaf_values(_random_spec(4))
    assert not np.array_equal(one["A"], other["A"])
    # different leaves with the same init get different values
    same = from_dict({"expr": "A @ B", "matrix": {"A": {"h": 4, "w": 4, "init": "gaussian"},
                                                    "B": {"h": 4, "w": 4, "init": "gaussian"}}})
    vals = leaf_values(same)
    assert not np.array_equal(vals["A"], vals["B"])


def test_leaf_seed_is_stable():
    assert ev.leaf_seed(0, "input") == ev.leaf_seed(0, "input")
    assert ev.leaf_seed(0, "input") != ev.leaf_seed(0, "wQ")
    assert ev.leaf_seed(1, "input") != ev.leaf_seed(0, "input")
    assert 0 <= ev.leaf_seed(2 ** 40, "x") < 2 ** 31


def test_row_major_leaf_values():
    spec = from_dict({"expr": "A @ B", "matrix": {"A": {"h": 2, "w": 3, "init": "row major"},
                                                    "B": {"h": 3, "w": 1}}})
    a = leaf_values(spec)["A"]
    np.testing.assert_allclose(a, -1 + 2 * np.arange(6).reshape(2, 3) / 5, rtol=1e-6)


def test_transpose_leaf_is_the_transpose():
    spec = from_dict({"expr": "X @ X_t", "matrix": {
        "X": {"h": 3, "w": 5, "init": "gaussian"},
        "X_t": {"h": 5, "w": 3, "init": "transpose", "source": "X"}}})
    vals = evaluate(spec)
    np.testing.assert_array_equal(vals.leaves["X_t"], vals.leaves["X"].T)
    x = vals.leaves["X"].astype(np.float64)
    np.testing.assert_allclose(vals.results[""], x @ x.T, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# The attention preset


@pytest.fixture(scope="module")
def attention():
    spec = load_toml(PRESETS / "attention_gaussian.toml")
    return spec, evaluate(spec)


def test_attention_gaussian_matches_numpy(attention):
    spec, values = attention
    L = {n: a.astype(np.float64) for n, a in values.leaves.items()}
    assert L["input"].shape == (256, 768)
    np.testing.assert_array_equal(values.leaves["input_t"], values.leaves["input"].T)
    # gaussian leaves rescaled to min -1 .. max 1: mean about 0, sd about 1
    assert abs(L["input"].mean()) < 0.02 and abs(L["input"].std() - 1) < 0.02

    f32 = lambda m: m.astype(np.float32).astype(np.float64)   # stages are stored as float32
    Q = f32(L["input"] @ L["wQ"])
    K_t = f32(L["wK_t"] @ L["input_t"])
    scores = Q @ K_t / math.sqrt(64)
    mask = np.tril(np.ones((256, 256), bool))
    s = np.where(mask, scores, -np.inf)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    attn = f32(e / e.sum(axis=1, keepdims=True))
    V = f32(L["input"] @ L["wV"])
    av = f32(attn @ V)
    out = av @ L["wO"]

    r = values.results
    np.testing.assert_allclose(r["lll"], Q, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(r["llr"], K_t, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(r["ll"], attn, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r["lr"], V, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(r["l"], av, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r[""], out, rtol=1e-4, atol=1e-3)
    assert (np.triu(r["ll"], 1) == 0).all()
    np.testing.assert_allclose(r["ll"].sum(axis=1), 1, atol=1e-5)
    assert r[""].shape == (256, 768)
