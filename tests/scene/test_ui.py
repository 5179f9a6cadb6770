"""The panel's state and operators against the bpy wheel: preset table <-> properties round
trips, the expression tree, operators' error paths (the scene stays as it was), user presets,
mm links and the selected-matrix readout. The draw code is tested in test_ui_draw.py."""
from __future__ import annotations

import dataclasses
import re
import tomllib

import bpy
import numpy as np
import pytest

import mm_blender
from mm_blender.core import presets as core_presets
from mm_blender.core import spec as specmod
from mm_blender.core import toml_write
from mm_blender.errors import MMError
from mm_blender.ui import actions, operators, props
from mm_blender.ui import presets as ui_presets


@pytest.fixture(scope="module", autouse=True)
def registered():
    mm_blender.register()
    yield
    mm_blender.unregister()


@pytest.fixture(autouse=True)
def user_presets_dir(tmp_path):
    ui_presets.set_user_dir(tmp_path / "user_presets")
    yield tmp_path / "user_presets"
    ui_presets.set_user_dir(None)


@pytest.fixture
def settings():
    return props.settings_of(bpy.context.scene)


def comparable(spec: specmod.Spec) -> specmod.Spec:
    return dataclasses.replace(spec, origin="", base_dir=None)


def spec_of(data: dict) -> specmod.Spec:
    return comparable(specmod.from_dict(data, name=data.get("name", "")))


def object_names() -> list[str]:
    return sorted(o.name for o in bpy.data.objects)


class OperatorStub:
    """Runs an operator's execute() as Blender would, keeping its reports."""

    def __init__(self, cls, **properties):
        self.cls = cls
        self.reports = []
        self.__dict__.update(properties)

    def report(self, kind, message):
        self.reports.append((set(kind), message))

    def run(self, context):
        return self.cls.run(self, context)


def execute(cls, **properties):
    stub = OperatorStub(cls, **properties)
    return cls.execute(stub, bpy.context), stub.reports


EXTRA_TABLES = [
    {"name": "custom", "expr": "out = (x = A @ B) @ C", "seed": 7, "description": "d",
     "group": "expressions",
     "layout": {"scheme": "custom", "gap": 2.5, "scatter": 3.0, "blast": -0.5},
     "blocks": {"i": 2, "j": 3, "k": 4},
     "anim": {"alg": "vvprod", "fuse": "async", "speed": 3.3, "hide_inputs": True,
              "spin": 8.0, "frames_per_step": 2, "seconds": 1.5},
     "viz": {"sensitivity": "superlocal", "hue_gap": -0.1, "colormap": "diverging",
             "cell_shape": "sphere"},
     "deco": {"legends": 0.0, "shape_labels": False, "outlines": False},
     "look": {"background": "paper", "view": "iso"},
     "matrix": {"A": {"h": 8, "w": 5, "init": "uniform", "min": -0.3, "max": 0.7,
                      "dropout": 0.25},
                "B": {"h": 5, "w": 6, "init": "expr", "formula": "i * w + j"},
                "C": {"h": 6, "w": 3, "init": "file", "file": "data/c.npy", "tensor": "t"}},
     "matmul": {"x": {"epilogue": "softmax(tril(x/sqrt(k)))", "alg": "dotprod (col major)",
                      "k_blocks": 3, "polarity": "positive", "right_placement": "bottom"},
                "out": {"epilogue": "x/sqrt(k)"}}},
    {"name": "transposed", "expr": "S = X @ X_t",
     "matrix": {"X": {"h": 4, "w": 9, "init": "gaussian"},
                "X_t": {"h": 9, "w": 4, "init": "transpose", "source": "X"}},
     "model": {"model": "gpt2", "layer": 3, "head": 5, "tokens": 64}},
    {"name": "defaults", "expr": "A @ B"},
]


# --- dict <-> properties ---------------------------------------------------------------------

def test_property_defaults_are_the_spec_defaults():
    pairs = [(pg, cls) for pg, cls in props.SECTIONS.values()]
    pairs += [(props.MM_PG_matrix, specmod.LeafSpec), (props.MM_PG_model, specmod.ModelSpec),
              (props.MM_PG_matmul, specmod.MatmulSpec), (props.MM_PG_matmul, specmod.Placement)]
    for pg, cls in pairs:
        rna = pg.bl_rna.properties
        for f in dataclasses.fields(cls):
            if f.name in ("name", "placement"):
                continue
            assert f.name in rna, f"{pg.__name__} lacks {f.name} of {cls.__name__}"
            default = rna[f.name].default
            expected = f.default
            if f.default is dataclasses.MISSING:   # look.camera: [] is the zero vector
                assert f.default_factory() == [] and tuple(rna[f.name].default_array) == (0, 0, 0)
                continue
            if isinstance(expected, float):
                assert props.as_float(default) == props.as_float(expected), (pg, f.name)
            else:
                assert default == expected, (pg.__name__, f.name, default, expected)


def test_choices_are_the_spec_choices():
    with pytest.raises(MMError) as info:          # the spec lists what it accepts
        specmod.from_dict({"expr": "A @ B", "matrix": {"A": {"init": "bogus"}}})
    accepted = re.findall(r"'([^']+)'", str(info.value).split("is not one of", 1)[1])
    rna = props.MM_PG_matrix.bl_rna.properties
    assert [i.identifier for i in rna["init"].enum_items] == accepted
    rna = props.MM_PG_matmul.bl_rna.properties
    assert tuple(i.identifier for i in rna["epilogue"].enum_items) == specmod.EPILOGUES
    assert tuple(i.identifier for i in rna["alg"].enum_items) == specmod.ALGORITHMS
    rna = props.MM_PG_layout.bl_rna.properties
    assert tuple(i.identifier for i in rna["scheme"].enum_items) == specmod.SCHEMES


@pytest.mark.parametrize("name", [p.name for p in core_presets.list_presets()])
def test_every_preset_round_trips_through_the_panel(settings, name):
    path = core_presets.resolve(name)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    props.settings_from_dict(settings, data, base_dir=str(path.parent))
    back = props.dict_from_settings(settings)
    assert spec_of(back) == comparable(specmod.from_dict(data, name=name))
    assert tomllib.loads(toml_write.dumps(back)) == back      # what a saved preset holds
    assert settings.base_dir == str(path.parent)


@pytest.mark.parametrize("data", EXTRA_TABLES, ids=[t["name"] for t in EXTRA_TABLES])
def test_tables_round_trip_through_the_panel(settings, data):
    props.settings_from_dict(settings, data)
    back = props.dict_from_settings(settings)
    assert spec_of(back) == spec_of(data)
    assert ("model" in back) == ("model" in data)


def test_defaults_are_left_out_but_shapes_are_written(settings):
    props.settings_from_dict(settings, {"name": "t", "expr": "A @ B"})
    assert props.dict_from_settings(settings) == {
        "name": "t", "expr": "A @ B",
        "matrix": {"A": {"h": 32, "w": 32, "init": "row major"},
                   "B": {"h": 32, "w": 32, "init": "row major"}}}


def test_loading_resets_what_the_table_does_not_set(settings):
    props.settings_from_dict(settings, EXTRA_TABLES[0])
    props.settings_from_dict(settings, {"expr": "A @ B"})
    assert settings.layout.scheme == "blocks" and settings.blocks.k == 1
    assert settings.anim.hide_inputs is False and settings.look.background == "dark"
    assert settings.use_model is False and settings.seed == 0
    assert [m.name for m in settings.matrices] == ["A", "B"]


def test_single_precision_floats_come_back_as_written():
    assert props.as_float(0.7699999809265137) == 0.77
    assert props.as_float(1e-5) == 1e-5
    assert props.as_float(-2.0) == -2.0


# --- the expression tree ---------------------------------------------------------------------

def test_tree_rows_follow_the_expression(settings):
    props.settings_from_dict(settings, {
        "expr": "out = (attn = Q @ K_t) @ V",
        "matrix": {"Q": {"h": 16, "w": 8}, "K_t": {"h": 8, "w": 16}, "V": {"h": 16, "w": 4}}})
    rows = [(r.name, r.kind, r.depth, r.rows, r.cols) for r in settings.nodes]
    assert rows == [("out", "MATMUL", 0, 16, 4), ("attn", "MATMUL", 1, 16, 16),
                    ("Q", "LEAF", 2, 16, 8), ("K_t", "LEAF", 2, 8, 16), ("V", "LEAF", 1, 16, 4)]
    settings.node_index = 2
    row, item = props.selected_node(settings)
    assert row.name == "Q" and item.h == 16
    item.h = 12                                   # the shapes follow at once (update callback)
    assert (settings.nodes[0].rows, settings.nodes[1].rows) == (12, 12)
    settings.node_index = 1
    row, item = props.selected_node(settings)
    assert row.kind == "MATMUL" and item.name == "attn"


def test_a_typo_shows_its_column_and_loses_no_settings(settings):
    props.settings_from_dict(settings, {"expr": "A @ B", "matrix": {"A": {"h": 3, "w": 7},
                                                                    "B": {"h": 7, "w": 2}}})
    settings.expr = "A @ (B"
    assert "column 7" in settings.expr_error and len(settings.nodes) == 0
    settings.expr = "A @ B @ C"
    assert settings.expr_error == ""
    assert (settings.matrices["A"].h, settings.matrices["A"].w) == (3, 7)
    assert [r.name for r in settings.nodes] == ["A @ B @ C", "A @ B", "A", "B", "C"]
    settings.expr = "A @ B"                       # C's settings stay, but are not written
    assert set(props.dict_from_settings(settings)["matrix"]) == {"A", "B"}


# --- operators -------------------------------------------------------------------------------

def test_build_and_clear_through_the_operators(settings):
    assert bpy.ops.mm.load_preset(name="intro_cube") == {"FINISHED"}
    assert settings.expr and settings.name == "intro_cube"
    assert bpy.ops.mm.build() == {"FINISHED"}
    first = object_names()
    matrices = sorted(o["mm_name"] for o in bpy.data.objects if "mm_name" in o)
    assert len(matrices) == 3
    assert bpy.ops.mm.build() == {"FINISHED"}     # a rebuild replaces, never duplicates
    assert object_names() == first
    assert bpy.ops.mm.clear() == {"FINISHED"}
    assert object_names() == []


def test_a_malformed_expression_cancels_and_leaves_the_scene_alone(settings):
    bpy.ops.mm.load_preset(name="intro_cube")
    bpy.ops.mm.build()
    before = object_names()
    settings.expr = "L @ @ R"
    with pytest.raises(RuntimeError, match="column 5"):    # bpy.ops raises ERROR reports
        bpy.ops.mm.build()
    assert object_names() == before

    result, reports = execute(operators.MM_OT_build)
    assert result == {"CANCELLED"}
    assert len(reports) == 1 and reports[0][0] == {"ERROR"}
    assert "column 5" in reports[0][1] and "expected a matrix name" in reports[0][1]
    assert object_names() == before


def test_a_shape_mismatch_cancels_and_names_the_dimensions(settings):
    bpy.ops.mm.load_preset(name="intro_cube")
    bpy.ops.mm.build()
    before = object_names()
    left = settings.nodes[1].name
    settings.matrices[left].w += 1
    result, reports = execute(operators.MM_OT_build)
    assert result == {"CANCELLED"}
    assert "shape mismatch" in reports[0][1] and "!=" in reports[0][1]
    assert object_names() == before


def test_an_unknown_preset_cancels(settings):
    result, reports = execute(operators.MM_OT_load_preset, name="no_such_preset")
    assert result == {"CANCELLED"} and "no_such_preset" in reports[0][1]


def test_urls_are_refused_while_online_access_is_off(settings, monkeypatch):
    monkeypatch.setattr(actions, "online_access", lambda: False)
    props.settings_from_dict(settings, {"expr": "A @ B", "matrix": {
        "A": {"h": 2, "w": 2, "init": "url", "url": "https://example.com/a.csv"},
        "B": {"h": 2, "w": 2}}})
    result, reports = execute(operators.MM_OT_build)
    assert result == {"CANCELLED"} and "network access is off" in reports[0][1]
    assert object_names() == []


def test_frame_camera_needs_a_build_then_reframes(settings):
    result, reports = execute(operators.MM_OT_frame_camera)
    assert result == {"CANCELLED"} and "build first" in reports[0][1]
    bpy.ops.mm.load_preset(name="intro_cube")
    bpy.ops.mm.build()
    settings.look.view = "top"
    assert bpy.ops.mm.frame_camera() == {"FINISHED"}
    assert bpy.context.scene.camera["mm_view"] == "top"


def test_selected_matrix_readout(settings):
    from mm_blender.scene.cells import read_values
    bpy.ops.mm.load_preset(name="intro_cube")
    bpy.ops.mm.build()
    result = next(o for o in bpy.data.objects if o.get("mm_role") == "result")
    info = actions.matrix_info(result)
    values = read_values(result)
    assert info["name"] == result["mm_name"] and info["role"] == "result"
    assert (info["rows"], info["cols"]) == (result["mm_rows"], result["mm_cols"])
    assert info["rows"] * info["cols"] == len(values)
    assert (info["min"], info["max"]) == (float(values.min()), float(values.max()))
    camera = bpy.context.scene.camera
    assert actions.matrix_info(camera) is None


def test_render_still_through_the_operator(settings, tmp_path):
    bpy.ops.mm.load_preset(name="intro_cube")
    bpy.ops.mm.build()
    r = settings.render
    r.resolution_x, r.resolution_y, r.samples = 64, 36, 1
    r.still_path = str(tmp_path / "still.png")
    assert bpy.ops.mm.render_still() == {"FINISHED"}
    img = bpy.data.images.load(str(tmp_path / "still.png"))
    assert tuple(img.size) == (64, 36)                     # the panel's settings were used
    assert bpy.context.scene.cycles.samples == 1
    px = np.array(img.pixels[:], np.float32).reshape(36, 64, 4)[..., :3]
    assert px.std(axis=(0, 1)).min() > 0.05, "the picture is (nearly) uniform"
    r, b = px[..., 0], px[..., 2]                          # both signs' colours are drawn
    assert (b > r + 0.15).sum() >= 20 and (r > b + 0.15).sum() >= 20


def test_render_animation_checks_its_path_first(settings, tmp_path):
    bpy.ops.mm.load_preset(name="intro_cube")
    bpy.ops.mm.build()
    settings.render.animation_path = str(tmp_path / "clip.mov")
    result, reports = execute(operators.MM_OT_render_animation)
    assert result == {"CANCELLED"} and ".mp4" in reports[0][1]


# --- user presets ----------------------------------------------------------------------------

def test_user_presets_save_list_load_delete(settings, user_presets_dir):
    bpy.ops.mm.load_preset(name="intro_cube")
    settings.matrices[settings.nodes[1].name].h = 5
    saved_table = props.dict_from_settings(settings)
    assert bpy.ops.mm.save_preset(name="my_cube") == {"FINISHED"}
    path = user_presets_dir / "my_cube.toml"
    assert path.is_file()
    assert [p.name for p in ui_presets.user_presets()] == ["my_cube"]
    items = ui_presets.enum_items()
    headings = [i[1] for i in items if i[0] == ""]
    assert headings[-1] == "Your Presets" and items[-1][0] == "my_cube"

    bpy.ops.mm.load_preset(name="dot_product")
    assert bpy.ops.mm.load_preset(name="my_cube") == {"FINISHED"}
    assert spec_of(props.dict_from_settings(settings)) == spec_of({**saved_table, "name": "my_cube"})
    assert settings.user_preset_name == "my_cube"

    result, _ = execute(operators.MM_OT_delete_preset, name="my_cube")
    assert result == {"FINISHED"} and not path.exists()
    assert ui_presets.user_presets() == []


def test_built_in_presets_are_read_only(settings, user_presets_dir):
    bpy.ops.mm.load_preset(name="intro_cube")
    builtin_file = core_presets.resolve("intro_cube")
    text = builtin_file.read_text()
    result, reports = execute(operators.MM_OT_save_preset, name="intro_cube")
    assert result == {"CANCELLED"} and "built-in" in reports[0][1]
    result, reports = execute(operators.MM_OT_delete_preset, name="intro_cube")
    assert result == {"CANCELLED"} and "built-in" in reports[0][1]
    result, reports = execute(operators.MM_OT_save_preset, name="../escape")
    assert result == {"CANCELLED"} and "preset name" in reports[0][1]
    assert builtin_file.read_text() == text
    assert not list(user_presets_dir.glob("*"))


def test_saving_an_invalid_panel_writes_nothing(settings, user_presets_dir):
    props.settings_from_dict(settings, {"expr": "A @ B"})
    settings.expr = "A @"
    result, reports = execute(operators.MM_OT_save_preset, name="broken")
    assert result == {"CANCELLED"} and "column" in reports[0][1]
    assert not list(user_presets_dir.glob("*.toml"))


def test_relative_files_become_absolute_when_saved(settings, user_presets_dir, tmp_path):
    props.settings_from_dict(settings, EXTRA_TABLES[0], base_dir=str(tmp_path))
    path = actions.save_preset(settings, "with_file")
    saved = tomllib.loads(path.read_text())
    assert saved["matrix"]["C"]["file"] == str((tmp_path / "data" / "c.npy").resolve())


# --- mm links --------------------------------------------------------------------------------

def test_paste_an_mm_link(settings):
    from mm_blender.interop.mm_links import mm_link_from_spec
    spec = core_presets.load("intro_cube")
    settings.link = mm_link_from_spec(spec)
    assert bpy.ops.mm.import_link() == {"FINISHED"}
    assert settings.expr == spec.expr
    for name, leaf in spec.leaves.items():
        assert (settings.matrices[name].h, settings.matrices[name].w) == (leaf.h, leaf.w)


def test_a_bad_link_cancels(settings):
    result, reports = execute(operators.MM_OT_import_link, text="")
    assert result == {"CANCELLED"} and "paste an mm link" in reports[0][1]
    result, reports = execute(operators.MM_OT_import_link, text="https://example.com/?params={oops")
    assert result == {"CANCELLED"} and reports[0][0] == {"ERROR"}


# --- lens, spotlight, axes -------------------------------------------------------------------

def test_add_lens_through_the_operator(settings):
    with pytest.raises(RuntimeError, match="build one first"):
        bpy.ops.mm.add_lens()
    bpy.ops.mm.load_preset(name="lens_spotlight")
    assert settings.deco.lens and settings.deco.spotlight_row == 4 and settings.deco.axes
    settings.deco.lens = False                        # build without, then add one
    settings.deco.magnification = 5.0
    assert bpy.ops.mm.build() == {"FINISHED"}
    assert "lens_spotlight:lens" not in bpy.data.objects
    assert "lens_spotlight:spotlight" in bpy.data.objects
    assert bpy.ops.mm.add_lens() == {"FINISHED"}
    numbers = bpy.data.objects["lens_spotlight:lens_numbers"]
    mod = numbers.modifiers[0]
    from mm_blender.scene import lens_nodes
    assert mod[lens_nodes.LENS_INPUTS["Text Size"]] == pytest.approx(
        5.0 * specmod.LENS_TEXT_PER_MAGNIFICATION)
    with pytest.raises(RuntimeError, match="already has a lens"):
        bpy.ops.mm.add_lens()
    assert bpy.ops.mm.clear() == {"FINISHED"}
    assert object_names() == []
