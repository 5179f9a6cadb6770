"""Presets: every file loads and validates, errors in a preset name key and file, every
preset's values agree with an independent numpy computation; the TOML writer round-trips."""

import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_blender.core import expr as exprmod
from mm_blender.core import spec as specmod
from mm_blender.core import toml_write
from mm_blender.core.evaluate import evaluate
from mm_blender.errors import MMError

PRESETS = Path(__file__).resolve().parents[2] / "presets"
PRESET_FILES = sorted(PRESETS.glob("*.toml"))
ids = [p.stem for p in PRESET_FILES]

ARTICLE_PRESETS = {
    "intro_cube": "single", "dot_product": "single", "mvprod": "single",
    "mvprod_random": "single", "vmprod": "single", "vmprod_random": "single",
    "identity_mirror": "single", "outer_product": "single", "outer_product_random": "single",
    "ffn": "expressions", "bottleneck": "expressions", "multilayer_bottleneck": "expressions",
    "right_assoc_mlp": "expressions", "binary": "expressions",
    "data_parallel": "partitions", "binary_partition": "partitions",
    "full_layer": "attention", "full_layer_bpt": "partitions",
    "full_layer_ffn_split_k": "partitions", "full_layer_bpt_and_split_k": "partitions",
    "lora_single": "lora", "lora_head": "lora",
}


# --- loading --------------------------------------------------------------------------------

def test_article_presets_are_all_there():
    names = {p.stem for p in PRESET_FILES}
    assert set(ARTICLE_PRESETS) <= names


@pytest.mark.parametrize("path", PRESET_FILES, ids=ids)
def test_preset_loads_with_description_and_group(path):
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    spec = specmod.load_toml(path)
    assert spec.name == path.stem
    assert isinstance(raw.get("description"), str) and len(raw["description"]) > 20
    assert "\n" not in raw["description"]
    assert raw.get("group") in specmod.GROUPS and raw["group"] != "other"
    if path.stem in ARTICLE_PRESETS:
        assert spec.group == ARTICLE_PRESETS[path.stem]
        assert raw.get("seed") == 0
        # the article's gaussian leaves carried stale CSV urls; presets must not
        assert all(leaf.url == "" for leaf in spec.leaves.values())


def test_article_numbers_are_kept():
    """Spot checks of mm's values against the article (sizes, blocks, epilogues, algs)."""
    s = specmod.load_toml(PRESETS / "full_layer_bpt_and_split_k.toml")
    assert (s.blocks.i, s.blocks.j, s.blocks.k) == (8, 1, 8)
    assert s.matmuls["attn @ V"].k_blocks == 8
    assert s.matmuls["attn"].epilogue == "softmax(tril(x/sqrt(k)))"
    assert s.matmuls["layer_out"].epilogue == "layernorm"
    assert s.matmuls["attn_out @ FFN_1"].epilogue == "gelu"
    assert s.leaves["wO"].max == 0.996
    assert (s.leaves["FFN_1"].h, s.leaves["FFN_1"].w) == (192, 768)
    s = specmod.load_toml(PRESETS / "intro_cube.toml")
    assert s.leaves["L"].formula == "-2 * (Math.trunc(i / 8) % 2) + 1"
    assert (s.layout.gap, s.viz.elem_scale, s.viz.min_size) == (3, 0.8227, 0.196)
    s = specmod.load_toml(PRESETS / "lora_single.toml")   # real factors, mm's rank and gap
    assert (s.leaves["wQK_A"].w, s.leaves["wQK_B"].h, s.layout.gap) == (4, 4, 11.214)
    s = specmod.load_toml(PRESETS / "dot_product.toml")
    assert (s.anim.alg, s.anim.speed) == ("dotprod (row major)", 48)


# --- the documented schema agrees with spec.py ------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "PRESETS.md"
DOC_SECTIONS = {
    "[matrix.NAME]": specmod.LeafSpec, '[matmul."NAME"]': specmod.MatmulSpec,
    "[layout]": specmod.LayoutSpec, "[blocks]": specmod.BlocksSpec, "[anim]": specmod.AnimSpec,
    "[viz]": specmod.VizSpec, "[deco]": specmod.DecoSpec, "[look]": specmod.LookSpec,
    "[model]": specmod.ModelSpec,
}


def documented_defaults():
    """{section heading: {key: default}} from the docs' tables (literal defaults only)."""
    out, section = {}, None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            m = re.search(r"`(\[[^`]+\])`", line)
            section = m.group(1) if m else None
            out.setdefault(section, {})
        elif section and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            keys = re.findall(r"`([^`]+)`", cells[0])
            defaults = re.findall(r"`([^`]+)`", cells[2])
            if len(defaults) == 1:
                defaults = defaults * len(keys)
            for key, default in zip(keys, defaults):
                out[section][key] = tomllib.loads(f"x = {default}")["x"]
    return out


def test_docs_list_every_key_with_its_default():
    import dataclasses
    docs = documented_defaults()
    for section, cls in DOC_SECTIONS.items():
        fields = {f.name: (f.default_factory() if f.default is dataclasses.MISSING else f.default)
                  for f in dataclasses.fields(cls) if f.name != "name"}
        documented = docs.get(section, {})
        if cls is specmod.MatmulSpec:
            fields.pop("placement")
            for key in ("polarity", "left_placement", "right_placement", "result_placement"):
                assert key in DOCS.read_text(encoding="utf-8")
        missing = set(fields) - set(documented)
        assert not missing, (section, missing)
        for key, default in fields.items():
            if key in documented:
                assert documented[key] == default, (section, key, documented[key], default)


# --- errors name the key and the file --------------------------------------------------------

def _variant(tmp_path, path, edit):
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    edit(data)
    out = tmp_path / path.name
    out.write_text(toml_write.dumps(data), encoding="utf-8")
    return out


def _first_leaf(data):
    return next(iter(data["matrix"]))


BAD_EDITS = {
    "unknown top key": (lambda d: d.update(colour="blue"), "colour"),
    "unknown viz key": (lambda d: d.setdefault("viz", {}).update(hue_shift=0.1), "hue_shift"),
    "unknown matrix key": (lambda d: d["matrix"][_first_leaf(d)].update(height=3), "height"),
    "unknown matmul key": (
        lambda d: d.setdefault("matmul", {}).setdefault(
            exprmod.parse(d["expr"]).name, {}).update(epilog="relu"), "epilog"),
    "gap is text": (lambda d: d.setdefault("layout", {}).update(gap="wide"), "gap"),
    "h is a float": (lambda d: d["matrix"][_first_leaf(d)].update(h=3.5), "h"),
    "hide_inputs is a number": (
        lambda d: d.setdefault("anim", {}).update(hide_inputs=1), "hide_inputs"),
    "sensitivity is a list": (
        lambda d: d.setdefault("viz", {}).update(sensitivity=["local"]), "sensitivity"),
    "blocks is not a table": (lambda d: d.update(blocks=8), "blocks"),
}


@pytest.mark.parametrize("path", PRESET_FILES, ids=ids)
def test_bad_preset_variants_name_key_and_file(tmp_path, path):
    for n, (edit, (change, key)) in enumerate(sorted(BAD_EDITS.items())):
        folder = tmp_path / str(n)
        folder.mkdir()
        bad = _variant(folder, path, change)
        with pytest.raises(MMError) as info:
            specmod.load_toml(bad)
        message = str(info.value)
        assert str(bad) in message, (edit, message)
        assert key in message, (edit, message)


def test_unparsable_preset_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('expr = "A @ B"\n[layout\n')
    with pytest.raises(MMError, match=re.escape(str(bad))):
        specmod.load_toml(bad)


# --- values: evaluate() against an independent numpy computation -----------------------------

def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _softmax(x, causal):
    x = np.array(x, dtype=np.float64)
    if causal:
        x[np.triu(np.ones(x.shape, dtype=bool), k=1)] = -np.inf
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def reference_epilogue(x, name, k):
    """The epilogues as mm defines them, written without looking at evaluate.py."""
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "gelu":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "silu":
        return x / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "x**2":
        return x ** 2
    if name == "x/k":
        return x / k
    if name == "x/sqrt(k)":
        return x / math.sqrt(k)
    if name == "layernorm":
        return (x - x.mean()) / math.sqrt(x.var() + 1e-5)
    if name == "softmax":
        return _softmax(x, False)
    if name == "softmax(x/sqrt(k))":
        return _softmax(x / math.sqrt(k), False)
    if name == "softmax(tril(x/sqrt(k)))":
        return _softmax(x / math.sqrt(k), True)
    raise AssertionError(name)


FORMULAS = {
    "-2 * (Math.trunc(i / 8) % 2) + 1": lambda i, j, h, w: -2 * (np.trunc(i / 8) % 2) + 1,
    "-2 * (Math.trunc(j / 8) % 2) + 1": lambda i, j, h, w: -2 * (np.trunc(j / 8) % 2) + 1,
}


def reference_leaf(leaf, h, w):
    """Deterministic inits recomputed here; None for random ones (checked statistically)."""
    i, j = np.indices((h, w), dtype=np.float64)
    n = h * w
    base = {
        "rows": (i / (h - 1)) if h > 1 else 0 * i,
        "cols": (j / (w - 1)) if w > 1 else 0 * j,
        "row major": ((i * w + j) / (n - 1)) if n > 1 else 0 * i,
        "col major": ((j * h + i) / (n - 1)) if n > 1 else 0 * i,
        "eye": (i == j) * 1.0,
        "tril mask": (j <= i) * 1.0,
        "triu mask": (j >= i) * 1.0,
        "diff": (i == j) * 1.0 - (i == j + 1) * 1.0,
        "zeros": 0 * i,
        "ones": 0 * i + 1,
    }.get(leaf.init)
    if leaf.init == "expr" and leaf.formula in FORMULAS:
        base = FORMULAS[leaf.formula](i, j, h, w)
    if base is None:
        return None
    if leaf.init in ("rows", "cols", "row major", "col major") and (leaf.min, leaf.max) != (0, 1):
        base = leaf.min + max(0.0, leaf.max - leaf.min) * base
    return base


# Presets with a [model] table read a real attention head: their values are checked against
# the model itself in tests/models/test_attention_presets.py.
GENERATED_PRESETS = [p for p in PRESET_FILES if specmod.load_toml(p).model is None]


@pytest.mark.parametrize("path", GENERATED_PRESETS, ids=lambda p: p.stem)
def test_preset_values_match_numpy(path):
    spec = specmod.load_toml(path)
    values = evaluate(spec, allow_network=False)

    for name, leaf in spec.leaves.items():
        got = values.leaves[name]
        assert got.shape == (leaf.h, leaf.w) and got.dtype == np.float32
        if leaf.init == "transpose":
            np.testing.assert_array_equal(got, values.leaves[leaf.source].T)
            continue
        want = reference_leaf(leaf, leaf.h, leaf.w)
        if want is not None and leaf.dropout == 0:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)
        elif leaf.init == "gaussian" and leaf.dropout == 0 and got.size >= 256:
            # min + (max - min) * N(0.5, 0.5)
            mean = leaf.min + (leaf.max - leaf.min) * 0.5
            sd = (leaf.max - leaf.min) * 0.5
            assert abs(got.mean() - mean) < 6 * sd / math.sqrt(got.size), name
            assert abs(got.std() - sd) < 0.1 * sd, name

    for node in exprmod.matmuls(spec.tree):
        left = values.of(node.left).astype(np.float64)
        right = values.of(node.right).astype(np.float64)
        k = left.shape[1]
        raw = np.einsum("ik,kj->ij", left, right)
        want = reference_epilogue(raw, spec.matmul(node).epilogue, k)
        got = values.of(node)
        assert got.shape == (spec.shape(node.left)[0], spec.shape(node.right)[1])
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=2e-6 * scale,
                                   err_msg=f"{path.stem}: {node.name}")


# rope / rope_t (ours) are checked against a complex-rotation reference in test_evaluate.py
@pytest.mark.parametrize("epilogue", [e for e in specmod.EPILOGUES if not e.startswith("rope")])
def test_every_epilogue_against_reference(epilogue):
    """Small values too, where layernorm's eps and gelu's erf matter."""
    from mm_blender.core.evaluate import apply_epilogue
    rng = np.random.default_rng(0)
    for scale in (0.01, 1.0, 30.0):
        x = rng.normal(0, scale, (7, 7))
        got = apply_epilogue(x.copy(), epilogue, 5)
        want = reference_epilogue(x, epilogue, 5)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7 * max(1.0, np.abs(want).max()),
                                   err_msg=f"{epilogue} at scale {scale}")


def test_reference_epilogues_are_sane():
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    s = reference_epilogue(x, "softmax(tril(x/sqrt(k)))", 4)
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    assert s[0, 1] == 0 and s[0, 2] == 0 and s[0, 0] == 1
    ln = reference_epilogue(x, "layernorm", 3)
    assert abs(ln.mean()) < 1e-12 and abs(ln.std() - 1) < 1e-5
    assert reference_epilogue(np.array([0.0]), "gelu", 1)[0] == 0


# --- the TOML writer ----------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.one_of(
    text,
    st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))
tables = st.recursive(
    st.dictionaries(text, values, max_size=4),
    lambda inner: st.dictionaries(text, st.one_of(values, inner), max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(tables)
def test_toml_round_trip(data):
    assert tomllib.loads(toml_write.dumps(data)) == data


def test_toml_writer_details():
    out = toml_write.dumps({"a": 1.0, "b": 1, "c": 0.1, "d": 1e-7, "e": float("inf"),
                            "m": {"A @ B": {"x": True}}, "s": 'q"\\\n\t\x01é'})
    assert "a = 1.0\n" in out and "b = 1\n" in out and "c = 0.1\n" in out
    assert '[m."A @ B"]' in out
    assert '"q\\"\\\\\\n\\t\\u0001é"' in out
    back = tomllib.loads(out)
    assert isinstance(back["a"], float) and back["d"] == 1e-7 and back["e"] == math.inf
    for x in (0.1 + 0.2, 1 / 3, 2.5e-300, 1.7976931348623157e308):
        assert tomllib.loads(toml_write.dumps({"x": x}))["x"] == x
    assert toml_write.dumps({"e": {}}) == "[e]\n"
    with pytest.raises(TypeError):
        toml_write.dumps({"x": None})
    with pytest.raises(TypeError):
        toml_write.dumps({"x": [{"a": 1}]})


def test_presets_are_written_by_the_writer():
    """Presets stay in the writer's canonical form (regenerating them gives no diff)."""
    for path in PRESET_FILES:
        if path.stem not in ARTICLE_PRESETS:
            continue
        text = path.read_text(encoding="utf-8")
        assert toml_write.dumps(tomllib.loads(text)) == text, path.stem
