"""The spec: mm's defaults, and every mistake in a preset is one MMError naming the file, the
key and the problem (unknown keys at every level, wrong types, ranges, shapes, transposes,
custom placements)."""

import dataclasses
import math
from pathlib import Path

import pytest

from mm_blender.core import spec as S
from mm_blender.core.layout import compute_layout
from mm_blender.core.spec import from_dict, load_toml
from mm_blender.errors import MMError

PRESETS = Path(__file__).resolve().parents[2] / "presets"


def write(tmp_path, text, name="preset.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path, text) -> tuple[str, Path]:
    path = write(tmp_path, text)
    with pytest.raises(MMError) as info:
        load_toml(path)
    message = str(info.value)
    assert "\n" not in message
    return message, path


# --------------------------------------------------------------------------------------------
# Defaults (mm's index.html params and viz.js defaults)


def test_defaults_are_mms():
    spec = from_dict({"expr": "L @ R"})
    L = spec.layout
    assert (L.scheme, L.polarity, L.left_placement, L.right_placement, L.result_placement) == \
        ("blocks", "negative", "left", "top", "front")
    assert (L.gap, L.scatter, L.molecule, L.blast) == (4, 0, 1, 0)
    assert (spec.blocks.i, spec.blocks.j, spec.blocks.k) == (1, 1, 1)
    A = spec.anim
    assert (A.alg, A.fuse, A.speed, A.hide_inputs, A.spin) == ("none", "none", 20, False, 0)
    V = spec.viz
    assert V.sensitivity == "global"
    assert (V.min_size, V.min_light, V.max_light, V.elem_scale) == (0.2, 0.4, 0.7, 1.25)
    assert (V.zero_hue, V.hue_gap, V.hue_spread) == (0.77, 0.74, 0.04)
    D = spec.deco
    assert (D.legends, D.shape_labels, D.row_guides, D.flow_guides) == (6, True, 0.6, 0.5)
    for name in ("L", "R"):
        leaf = spec.leaves[name]
        assert (leaf.h, leaf.w, leaf.min, leaf.max, leaf.dropout) == (32, 32, -1, 1, 0)
    mm = spec.matmuls["L @ R"]
    assert (mm.epilogue, mm.alg, mm.k_blocks, mm.placement) == ("none", "inherit", 1, None)
    assert spec.model is None and spec.group == "other" and spec.seed == 0


def test_every_leaf_and_matmul_gets_a_spec():
    spec = from_dict({"expr": "out = (attn = Q @ K_t) @ V"})
    assert set(spec.leaves) == {"Q", "K_t", "V"}
    assert set(spec.matmuls) == {"out", "attn"}
    assert spec.shape(spec.tree) == (32, 32)


def test_minimal_toml_file(tmp_path):
    spec = load_toml(write(tmp_path, 'expr = "A @ B"\n', "my_cube.toml"))
    assert spec.name == "my_cube"          # the file name when no name is given
    assert spec.origin == str(tmp_path / "my_cube.toml")
    assert spec.base_dir == tmp_path


def test_values_read_from_toml(tmp_path):
    spec = load_toml(write(tmp_path, """
name = "x"
expr = "A @ B @ C"
seed = 7
[layout]
gap = 2
scheme = "zigzag"
[blocks]
i = 2
k = 3
[matrix.A]
h = 6
w = 4
init = "uniform"
[matrix.B]
h = 4
w = 5
[matrix.C]
h = 5
w = 2
[matmul."A @ B"]
epilogue = "relu"
k_blocks = 2
"""))
    assert spec.seed == 7 and spec.layout.gap == 2.0 and spec.layout.scheme == "zigzag"
    assert (spec.blocks.i, spec.blocks.j, spec.blocks.k) == (2, 1, 3)
    assert spec.shape(spec.tree) == (6, 2)
    assert spec.shape(spec.tree.left) == (6, 5)
    assert spec.matmuls["A @ B"].epilogue == "relu" and spec.matmuls["A @ B"].k_blocks == 2
    assert spec.cell_count() == 6 * 4 + 4 * 5 + 6 * 5 + 5 * 2 + 6 * 2
    assert isinstance(spec.layout.gap, float)  # an int in TOML is fine for a float key


# --------------------------------------------------------------------------------------------
# Unknown keys at every level: the message has the file path, the key and the known keys


@pytest.mark.parametrize("text, key, where", [
    ('expr = "A @ B"\ncolour = 1\n', "colour", None),
    ('expr = "A @ B"\n[layout]\ngapp = 3\n', "gapp", "[layout]"),
    ('expr = "A @ B"\n[blocks]\nl = 3\n', "l", "[blocks]"),
    ('expr = "A @ B"\n[anim]\nspeeed = 3\n', "speeed", "[anim]"),
    ('expr = "A @ B"\n[viz]\nhue = 3\n', "hue", "[viz]"),
    ('expr = "A @ B"\n[deco]\nlegend = 3\n', "legend", "[deco]"),
    ('expr = "A @ B"\n[look]\ncam = "x"\n', "cam", "[look]"),
    ('expr = "A @ B"\n[model]\nmodle = "gpt2"\n', "modle", "[model]"),
    ('expr = "A @ B"\n[matrix.A]\nheight = 3\n', "height", "[matrix.A]"),
    ('expr = "A @ B"\n[matrix.A]\nname = "Z"\n', "name", "[matrix.A]"),
    ('expr = "A @ B"\n[matmul."A @ B"]\nepilog = "relu"\n', "epilog", "[matmul.'A @ B']"),
])
def test_unknown_keys_name_file_and_key(tmp_path, text, key, where):
    message, path = error_of(tmp_path, text)
    assert str(path) in message
    assert f"unknown key {key!r}" in message
    assert "known keys" in message
    if where:
        assert where in message


def test_unknown_leaf_and_matmul_tables(tmp_path):
    message, path = error_of(tmp_path, 'expr = "A @ B"\n[matrix.C]\nh = 3\n')
    assert str(path) in message and "'C' is not a leaf" in message and "A, B" in message
    message, path = error_of(tmp_path, 'expr = "A @ B"\n[matmul.A]\nk_blocks = 2\n')
    assert str(path) in message and "'A' is not a matmul" in message and "'A @ B'" in message


# --------------------------------------------------------------------------------------------
# Wrong types


@pytest.mark.parametrize("text, key, expected", [
    ('expr = "A @ B"\n[matrix.A]\nh = "32"\n', "[matrix.A].h", "whole number"),
    ('expr = "A @ B"\n[matrix.A]\nw = 2.5\n', "[matrix.A].w", "whole number"),
    ('expr = "A @ B"\n[matrix.A]\nh = true\n', "[matrix.A].h", "whole number"),
    ('expr = "A @ B"\n[matrix.A]\ninit = 3\n', "[matrix.A].init", "string"),
    ('expr = "A @ B"\n[matrix.A]\nmin = "low"\n', "[matrix.A].min", "number"),
    ('expr = "A @ B"\n[anim]\nhide_inputs = 1.0\n', "[anim].hide_inputs", "true or false"),
    ('expr = "A @ B"\n[anim]\nhide_inputs = 1\n', "[anim].hide_inputs", "true or false"),
    ('expr = "A @ B"\n[deco]\nshape_labels = "yes"\n', "[deco].shape_labels", "true or false"),
    ('expr = "A @ B"\n[layout]\ngap = "5"\n', "[layout].gap", "number"),
    ('expr = "A @ B"\n[layout]\ngap = true\n', "[layout].gap", "number"),
    ('expr = "A @ B"\n[blocks]\ni = 1.5\n', "[blocks].i", "whole number"),
    ('expr = "A @ B"\n[matmul."A @ B"]\nk_blocks = "2"\n', "k_blocks", "whole number"),
    ('expr = "A @ B"\n[matmul."A @ B"]\nepilogue = 1\n', "epilogue", "string"),
    ('expr = "A @ B"\nseed = 1.5\n', "seed", "whole number"),
    ('expr = 3\n', "expr", "string"),
    ('expr = "A @ B"\nname = 3\n', "name", "string"),
    ('expr = "A @ B"\nlayout = 3\n', "[layout]", "table"),
    ('expr = "A @ B"\nmatrix = 3\n', "[matrix]", "table"),
    ('expr = "A @ B"\n[matrix]\nA = 3\n', "[matrix.A]", "table"),
])
def test_wrong_types_name_file_and_key(tmp_path, text, key, expected):
    message, path = error_of(tmp_path, text)
    assert str(path) in message and key in message and expected in message


def test_whole_float_is_accepted_for_int():
    spec = from_dict({"expr": "A @ B", "matrix": {"A": {"h": 3.0, "w": 4}, "B": {"h": 4}}})
    assert spec.leaves["A"].h == 3 and isinstance(spec.leaves["A"].h, int)


@pytest.mark.parametrize("text, words", [
    ('expr = "A @ B\n', ["not valid TOML"]),
    ('expr = "A @"\n', ["column 4", "expected a matrix name"]),
    ('expr = "A @ B"\n[layout]\nscheme = "spiral"\n', ["layout.scheme", "'spiral'", "'blocks'"]),
    ('expr = "A @ B"\n[matmul."A @ B"]\nepilogue = "swish"\n', ["epilogue", "'swish'", "'gelu'"]),
    ('expr = "A @ B"\n[matrix.A]\ninit = "random"\n', ["[matrix.A].init", "'random'"]),
    ('expr = "A @ B"\n[viz]\ncolormap = "jet"\n', ["viz.colormap", "'jet'"]),
    ('expr = "A @ B"\n', []),   # (valid: checked below)
])
def test_bad_values_name_the_problem(tmp_path, text, words):
    if not words:
        load_toml(write(tmp_path, text))
        return
    message, path = error_of(tmp_path, text)
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(MMError, match="does not exist"):
        load_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'expr = "A \xff @ B"\n')
    with pytest.raises(MMError, match="not UTF-8"):
        load_toml(bad)
    with pytest.raises(MMError, match="missing key 'expr'"):
        load_toml(write(tmp_path, 'name = "x"\n'))


# --------------------------------------------------------------------------------------------
# Shapes


def test_shape_mismatch_names_both_matrices_and_sizes(tmp_path):
    message, path = error_of(tmp_path, """
expr = "A @ B"
[matrix.A]
h = 2
w = 3
[matrix.B]
h = 4
w = 5
""")
    assert str(path) in message and "shape mismatch" in message
    assert "'A'" in message and "'B'" in message
    assert "2x3" in message and "4x5" in message


def test_shape_mismatch_deep_in_a_tree_names_the_sub_results():
    with pytest.raises(MMError) as info:
        from_dict({"expr": "A @ B @ C", "matrix": {
            "A": {"h": 2, "w": 3}, "B": {"h": 3, "w": 4}, "C": {"h": 5, "w": 6}}})
    message = str(info.value)
    assert "'A @ B @ C'" in message and "'A @ B'" in message and "'C'" in message
    assert "2x4" in message and "5x6" in message


def test_shapes_of_sub_results():
    spec = from_dict({"expr": "A @ (B @ C)", "matrix": {
        "A": {"h": 2, "w": 3}, "B": {"h": 3, "w": 4}, "C": {"h": 4, "w": 7}}})
    assert spec.shape(spec.tree.right) == (3, 7)
    assert spec.shape(spec.tree) == (2, 7)


# --------------------------------------------------------------------------------------------
# Transpose leaves


def test_transpose_leaf_ok():
    spec = from_dict({"expr": "X @ X_t", "matrix": {
        "X": {"h": 3, "w": 5}, "X_t": {"h": 5, "w": 3, "init": "transpose", "source": "X"}}})
    assert spec.leaves["X_t"].source == "X"
    assert spec.shape(spec.tree) == (3, 3)


@pytest.mark.parametrize("matrix, words", [
    ({"X": {"h": 3, "w": 5}, "X_t": {"h": 5, "w": 3, "init": "transpose"}},
     ["needs source", "[matrix.X_t]"]),
    ({"X": {"h": 3, "w": 5}, "X_t": {"h": 5, "w": 3, "init": "transpose", "source": "Y"}},
     ["'Y' is not one"]),
    ({"X": {"h": 3, "w": 5}, "X_t": {"h": 3, "w": 5, "init": "transpose", "source": "X"}},
     ["must be 5x3", "not 3x5"]),
    ({"X": {"h": 3, "w": 3, "init": "transpose", "source": "X_t"},
      "X_t": {"h": 3, "w": 3, "init": "transpose", "source": "X"}},
     ["itself a transpose"]),
])
def test_transpose_errors(matrix, words):
    expr = "X @ X_t"
    with pytest.raises(MMError) as info:
        from_dict({"expr": expr, "matrix": matrix}, origin="t.toml")
    message = str(info.value)
    assert message.startswith("t.toml")
    for word in words:
        assert word in message, message


# --------------------------------------------------------------------------------------------
# Custom placements


CUSTOM_CHILD = {"polarity": "negative", "left_placement": "right",
                "right_placement": "bottom", "result_placement": "front"}


def test_placement_keys_need_scheme_custom():
    with pytest.raises(MMError) as info:
        from_dict({"expr": "A @ B @ C", "matmul": {"A @ B": {"polarity": "positive"}}},
                  origin="p.toml")
    message = str(info.value)
    assert "p.toml" in message and "custom" in message and "'A @ B'" in message


def test_custom_placements_are_used():
    spec = from_dict({"expr": "A @ B @ C", "layout": {"scheme": "custom"},
                      "matmul": {"A @ B": dict(CUSTOM_CHILD)}})
    child = compute_layout(spec).cube("l")
    assert dataclasses.asdict(child.placement) == CUSTOM_CHILD
    # without its own settings a custom child is derived as `blocks` does
    spec = from_dict({"expr": "A @ B @ C", "layout": {"scheme": "custom"}})
    assert dataclasses.asdict(compute_layout(spec).cube("l").placement) == {
        "polarity": "positive", "left_placement": "left", "right_placement": "bottom",
        "result_placement": "back"}


def test_custom_placement_values_are_checked():
    with pytest.raises(MMError, match="polarity.*'sideways'"):
        from_dict({"expr": "A @ B @ C", "layout": {"scheme": "custom"},
                   "matmul": {"A @ B": {"polarity": "sideways"}}})


# --------------------------------------------------------------------------------------------
# Ranges


@pytest.mark.parametrize("data, key", [
    ({"layout": {"gap": 65}}, "layout.gap"),
    ({"layout": {"gap": -1}}, "layout.gap"),
    ({"layout": {"gap": math.nan}}, "[layout].gap: nan is not a finite number"),
    ({"layout": {"scatter": -1}}, "layout.scatter"),
    ({"layout": {"molecule": 0}}, "layout.molecule"),
    ({"layout": {"blast": 2.5}}, "layout.blast"),
    ({"blocks": {"i": 0}}, "blocks.i"),
    ({"blocks": {"k": 65}}, "blocks.k"),
    ({"anim": {"speed": 0}}, "anim.speed"),
    ({"viz": {"max_light": 1.5}}, "viz.max_light"),
    ({"viz": {"elem_scale": 0}}, "viz.elem_scale"),
    ({"matrix": {"A": {"h": 0}}}, "[matrix.A].h"),
    ({"matrix": {"A": {"w": 1 << 17}}}, "[matrix.A].w"),
    ({"matrix": {"A": {"dropout": 1.5}}}, "[matrix.A].dropout"),
    ({"matmul": {"A @ B": {"k_blocks": 0}}}, "k_blocks"),
    ({"matmul": {"A @ B": {"k_blocks": 65}}}, "k_blocks"),
])
def test_ranges(data, key):
    with pytest.raises(MMError) as info:
        from_dict({"expr": "A @ B @ C", **data}, origin="r.toml")
    message = str(info.value)
    assert message.startswith("r.toml") and key in message
    assert "out of range" in message or "not a finite number" in message


def test_range_edges_are_accepted():
    spec = from_dict({"expr": "A @ B", "layout": {"gap": 64, "blast": -2, "molecule": 1},
                      "blocks": {"i": 64, "j": 1, "k": 64},
                      "matrix": {"A": {"h": 1, "w": 1}, "B": {"h": 1, "w": 1}}})
    assert spec.layout.gap == 64 and spec.blocks.k == 64
    from_dict({"expr": "A @ B", "layout": {"gap": 0}})


def test_init_needs_its_argument():
    with pytest.raises(MMError, match="formula"):
        from_dict({"expr": "A @ B", "matrix": {"A": {"init": "expr"}}})
    with pytest.raises(MMError, match="file"):
        from_dict({"expr": "A @ B", "matrix": {"A": {"init": "file"}}})
    with pytest.raises(MMError, match="url"):
        from_dict({"expr": "A @ B", "matrix": {"A": {"init": "url"}}})


def test_with_changes_revalidates():
    spec = from_dict({"expr": "A @ B"})
    changed = S.with_changes(spec, seed=3)
    assert changed.seed == 3 and spec.seed == 0
    with pytest.raises(MMError):
        S.with_changes(spec, layout=S.LayoutSpec(gap=100))


def test_attention_preset_loads():
    spec = load_toml(PRESETS / "attention_gaussian.toml")
    assert spec.name == "attention_gaussian" and spec.group == "attention"
    assert spec.tree.name == "out"
    assert spec.shape(spec.tree) == (256, 768)
    assert spec.leaves["input_t"].init == "transpose"
    assert spec.matmuls["attn"].epilogue == "softmax(tril(x/sqrt(k)))"
    assert spec.layout.gap == 10 and spec.viz.sensitivity == "local"


def test_a_scene_too_large_for_memory_is_refused_before_any_work():
    from mm_blender import api
    from mm_blender.core.budget import BYTES_PER_CELL, check_memory
    spec = from_dict({"expr": "A @ B", "matrix": {"A": {"h": 60000, "w": 60000},
                                                   "B": {"h": 60000, "w": 60000}}},
                     origin="huge.toml")
    with pytest.raises(MMError, match=r"huge.toml: the scene has 10,800,000,000 cells.*GiB"):
        api.plan_spec(spec)                      # no values computed: it would take hours
    small = from_dict({"expr": "A @ B"})
    check_memory(small)                          # 3 x 32x32 cells fit anywhere
    with pytest.raises(MMError, match="3,072 cells"):
        check_memory(small, memory=int(3072 * BYTES_PER_CELL))   # a machine just too small
