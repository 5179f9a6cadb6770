"""The lens, the spotlight and the axes (scene/overlays.py): build small scenes, keyframe the
lens and the spotlight, save the .blend, then read what it evaluates in a fresh Python that
imports only bpy and numpy, and compare with the plan: which cells show numbers, the numbers
at their precision, which cells are spotlit, the k products, the axes. Plus a tiny Cycles
render of a lens, checked on its pixels."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import bpy
import numpy as np
import pytest

from mm_blender.core import spec as specmod
from mm_blender.core.evaluate import evaluate
from mm_blender.core.scene_plan import make_plan
from mm_blender.errors import MMError
from mm_blender.render.render import render_still
from mm_blender.scene import animate as animod
from mm_blender.scene import build as buildmod
from mm_blender.scene import overlays

DECIMALS = 2
GLYPHS = "0123456789-.ainf"  # scene/lens_nodes.GLYPHS: the glyph index of each character


def scene(name, shape="cube", seed=0, alg="none", blocks=(1, 1, 1), **deco):
    return dict(name=name, expr="L @ R", seed=seed, viz=dict(cell_shape=shape),
                blocks=dict(zip("ijk", blocks)), layout=dict(gap=2),
                anim=dict(alg=alg, frames_per_step=1),
                deco=dict(lens=True, lens_size=0.45, lens_row=2, lens_col=3,
                          lens_decimals=DECIMALS, spotlight_row=1, spotlight_col=4,
                          interior_spotlight=True, spotlight=2, **deco),
                matrix=dict(L=dict(h=6, w=5, init="gaussian"), R=dict(h=5, w=7, init="gaussian")))


SCENES = [scene("lens_cube", axes=True), scene("lens_sphere", "sphere", seed=3, blocks=(2, 3, 2)),
          scene("spot_sweep", alg="vmprod", seed=5)]
# frame -> (lens cell, spotlight cell) keyframed on the Empties of lens_cube
KEYS = {1: ((2, 3), (1, 4)), 2: ((4, 1), (3, 0))}

PLAYER = textwrap.dedent(r'''
    import json, sys
    import bpy
    import numpy as np

    WIDTH = {"FLOAT": 1, "INT": 1, "BOOLEAN": 1, "FLOAT_VECTOR": 3, "FLOAT_COLOR": 4}
    PROP = {"FLOAT": "value", "INT": "value", "BOOLEAN": "value", "FLOAT_VECTOR": "vector",
            "FLOAT_COLOR": "color"}

    def attrs(pc, transform):
        n = len(pc.points)
        out = {"n": n}
        for name, attr in pc.attributes.items():
            if name.startswith(".") or attr.data_type not in WIDTH:
                continue
            width = WIDTH[attr.data_type]
            dtype = {"INT": np.int32, "BOOLEAN": bool}.get(attr.data_type, np.float32)
            buf = np.empty(n * width, dtype)
            attr.data.foreach_get(PROP[attr.data_type], buf)
            out[name] = buf.reshape(n, width).tolist() if width > 1 else buf.tolist()
        if transform and n:
            xf = np.empty(n * 16, np.float32)
            pc.attributes["instance_transform"].data.foreach_get("value", xf)
            out["position"] = xf.reshape(n, 16)[:, 12:15].tolist()
        return out

    def read(obj, dg):
        out = {"type": obj.type}
        if obj.type in ("CAMERA", "LIGHT"):
            return out
        if obj.type == "FONT":
            out["body"] = obj.data.body
            return out
        if obj.type == "EMPTY":
            out["location"] = list(obj.matrix_world.translation)
            out["scale"] = list(obj.scale)
            return out
        gs = obj.evaluated_get(dg).evaluated_geometry()   # keep the GeometrySet alive
        inst = gs.instances_pointcloud()
        if obj.get("mm_role") == "lens_glyphs":            # each glyph's mesh: size, extent
            refs = gs.instance_references()
            which = np.empty(len(inst.points), np.int32)
            inst.attributes[".reference_index"].data.foreach_get("value", which)
            out["glyphs"] = []
            for r in which:
                mesh = refs[r].mesh
                co = np.empty(len(mesh.vertices) * 3, np.float32)
                mesh.vertices.foreach_get("co", co)
                co = co.reshape(-1, 3)
                out["glyphs"].append({"vertices": len(co), "faces": len(mesh.polygons),
                                      "min": co.min(0).tolist(), "max": co.max(0).tolist()})
            return out
        if inst is not None:
            out["instances"] = attrs(inst, True)
            out["references"] = len(gs.instance_references())
        if gs.pointcloud is not None:
            out["points"] = attrs(gs.pointcloud, False)
        if gs.mesh is not None:
            out["mesh_vertices"] = len(gs.mesh.vertices)
            out["mesh_faces"] = len(gs.mesh.polygons)
        return out

    blend, query = sys.argv[1], json.loads(sys.argv[2])
    bpy.ops.wm.open_mainfile(filepath=blend)
    scene = bpy.context.scene
    result = {"mm_blender_loaded": any(m.split(".")[0] == "mm_blender" for m in sys.modules),
              "objects": sorted(o.name for o in bpy.data.objects), "frames": {}}
    for f in query["frames"]:
        scene.frame_set(f)
        dg = bpy.context.evaluated_depsgraph_get()
        result["frames"][str(f)] = {name: read(bpy.data.objects[name], dg)
                                    for name in query["objects"] if name in bpy.data.objects}
    result["matrices"] = {o.name: list(o["mm_matrices"]) for o in bpy.data.objects
                          if "mm_matrices" in o}
    print("MM_JSON:" + json.dumps(result))
''')


def _cell_position(plan, key, row, col):
    m = plan.matrix(key)
    return np.asarray(m.positions[row * m.cols + col], np.float64)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lens")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scenes, names = {}, []
    for data in SCENES:
        spec = specmod.from_dict(data)
        plan = make_plan(spec, evaluate(spec))
        coll = buildmod.build(plan)
        if spec.anim.alg != "none":
            animod.animate(plan, spec, coll)
        scenes[spec.name] = dict(spec=spec, plan=plan)
        names += [o.name for o in coll.all_objects]
    # the user's keyframes: slide the lens and walk the spotlight (lens_cube)
    plan = scenes["lens_cube"]["plan"]
    root = next(m for m in plan.matrices if m.role == "result")
    for frame, (lens_cell, _) in KEYS.items():
        obj = bpy.data.objects["lens_cube:lens"]
        obj.location = _cell_position(plan, root.key, *lens_cell)
        obj.keyframe_insert("location", frame=frame)
    overlays.walk_spotlight(buildmod.find("lens_cube"),
                            [(frame, *spot) for frame, (_, spot) in KEYS.items()])
    with pytest.raises(MMError, match="outside"):
        overlays.walk_spotlight(buildmod.find("lens_cube"), [(5, 6, 0)])
    blend = tmp / "lens.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    query = {"frames": [1, 2, 3, 4], "objects": names}
    script = tmp / "play.py"
    script.write_text(PLAYER)
    proc = subprocess.run([sys.executable, str(script), str(blend), json.dumps(query)],
                          capture_output=True, text=True, cwd=str(tmp), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("MM_JSON:"))
    return dict(scenes=scenes, out=json.loads(line[len("MM_JSON:"):]))


def _geometry(rec):
    """Per-cell attributes of a cells object, cubes (instances) or spheres (points)."""
    return rec.get("instances") or rec.get("points") or {"n": 0}


def test_player_is_plain_blender(played):
    assert played["out"]["mm_blender_loaded"] is False


def _expected_lens(plan, location, radius):
    want = {}
    for n, m in enumerate(plan.matrices):
        d = np.linalg.norm(np.asarray(m.positions, np.float64) - location, axis=1)
        # no cell sits on the rim (the test would then depend on float rounding)
        assert np.abs(d - radius).min() > 1e-3
        for index in np.flatnonzero(d <= radius):
            want[(n, int(index))] = float(m.values[index])
    return want


@pytest.mark.parametrize("name, frame", [("lens_cube", 1), ("lens_cube", 2),
                                         ("lens_sphere", 1), ("spot_sweep", 3)])
def test_lens_shows_exactly_the_cells_in_its_radius_with_their_values(played, name, frame):
    plan = played["scenes"][name]["plan"]
    rec = played["out"]["frames"][str(frame)]
    lens = rec[f"{name}:lens"]
    numbers = rec[f"{name}:lens_numbers"]["instances"]
    assert played["out"]["matrices"][f"{name}:lens_numbers"] == [m.key for m in plan.matrices]
    want = _expected_lens(plan, np.asarray(lens["location"]), plan.lens.radius * lens["scale"][0])
    assert len(want) > 3
    # one instance per character: group them by cell, read the text in slot order
    text, got = {}, {}
    for m, i, v, slot, glyph in zip(numbers["lens_matrix"], numbers["lens_index"],
                                    numbers["lens_value"], numbers["lens_slot"],
                                    numbers["lens_glyph"]):
        text.setdefault((m, i), {})[slot] = GLYPHS[glyph]
        got.setdefault((m, i), set()).add(v)
    assert set(got) == set(want)
    for key, value in want.items():
        (shown,) = got[key]                      # one value per cell
        assert abs(shown - value) <= 0.5 * 10 ** -DECIMALS + 1e-6, key
        chars = text[key]
        assert sorted(chars) == list(range(len(chars)))
        drawn = "".join(chars[c] for c in range(len(chars)))
        assert drawn == f"{shown:.{DECIMALS}f}".replace("-0.00", "0.00"), (key, value, drawn)
    # each character is a glyph mesh, drawn
    assert rec[f"{name}:lens_numbers"]["references"] >= 1


def test_the_glyphs_are_the_characters_they_stand_for(played):
    """Instance n of the glyphs object is GLYPHS[n], a filled mesh: digits 0.69 high, '1'
    narrow, '-' wide and low, '.' small and at the baseline."""
    glyphs = played["out"]["frames"]["1"]["lens_cube:lens_glyphs"]["glyphs"]
    assert len(glyphs) == len(GLYPHS)
    size = {c: np.subtract(g["max"], g["min"])[:2] for c, g in zip(GLYPHS, glyphs)}
    assert all(g["faces"] > 0 for g in glyphs)
    for digit in "0123456789":
        assert size[digit][1] == pytest.approx(0.7, abs=0.05), digit
    assert size["1"][0] < 0.6 * size["0"][0]
    assert size["-"][0] > 2 * size["-"][1] and size["-"][1] < 0.2
    assert max(size["."]) < 0.2 and glyphs[GLYPHS.index(".")]["max"][1] < 0.2
    assert glyphs[GLYPHS.index("-")]["min"][1] > 0.1
    assert size["i"][0] < 0.6 * size["n"][0] and size["f"][1] > size["a"][1]


def test_moving_the_lens_by_a_keyframe_changes_which_cells_show(played):
    frames = played["out"]["frames"]
    a = frames["1"]["lens_cube:lens_numbers"]["instances"]
    b = frames["2"]["lens_cube:lens_numbers"]["instances"]
    assert a["n"] and b["n"]
    cells_a = set(zip(a["lens_matrix"], a["lens_index"]))
    cells_b = set(zip(b["lens_matrix"], b["lens_index"]))
    assert cells_a != cells_b and cells_b - cells_a
    plan = played["scenes"]["lens_cube"]["plan"]
    root = next(m for m in plan.matrices if m.role == "result")
    assert np.allclose(frames["2"]["lens_cube:lens"]["location"],
                       _cell_position(plan, root.key, *KEYS[2][0]), atol=1e-4)


def _spotlight_masks(plan, row, col):
    s = plan.spotlight
    masks = {}
    for m in plan.matrices:
        i, j = np.divmod(np.arange(m.rows * m.cols), m.cols)
        masks[m.key] = (i == row if m.key == s.left else j == col if m.key == s.right
                        else (i == row) & (j == col) if m.key == s.result
                        else np.zeros(len(i), bool))
    return masks


@pytest.mark.parametrize("name, frame", [("lens_cube", 1), ("lens_cube", 2),
                                         ("lens_sphere", 1)])
def test_spotlight_lights_exactly_row_column_and_cell_and_dims_the_rest(played, name, frame):
    plan = played["scenes"][name]["plan"]
    row, col = KEYS[frame][1] if name == "lens_cube" else (1, 4)
    rec = played["out"]["frames"][str(frame)]
    for key, mask in _spotlight_masks(plan, row, col).items():
        m = plan.matrix(key)
        geo = _geometry(rec[f"{name}:{key}"])
        drawn = m.sizes > 0
        assert geo["n"] == drawn.sum()
        assert np.array_equal(np.asarray(geo["spotlit"], bool), mask[drawn]), key
        colours = np.asarray(geo["color"] if "color" in geo else geo["cell_color"])[:, :3]
        want = np.where(mask[drawn, None], m.colors[drawn, :3], m.colors[drawn, :3] * plan.spotlight.dim)
        assert np.allclose(colours, want, atol=1e-5), key


@pytest.mark.parametrize("name, frame", [("lens_cube", 1), ("lens_cube", 2),
                                         ("lens_sphere", 1), ("spot_sweep", 1), ("spot_sweep", 4)])
def test_interior_spotlight_draws_the_k_products_of_the_cell(played, name, frame):
    plan = played["scenes"][name]["plan"]
    s = plan.spotlight
    row, col = KEYS[frame][1] if name == "lens_cube" else (1, 4)
    L = plan.matrix(s.left).values.reshape(6, 5)
    R = plan.matrix(s.right).values.reshape(5, 7)
    geo = _geometry(played["out"]["frames"][str(frame)][f"{name}:spotlight_products"])
    assert geo["n"] == 5
    assert geo["i"] == [row] * 5 and geo["j"] == [col] * 5 and sorted(geo["k"]) == list(range(5))
    order = np.argsort(geo["k"])
    assert np.allclose(np.asarray(geo["value"])[order], L[row] * R[:, col], rtol=1e-5)
    cube = plan.cubes[0]
    pos = geo.get("position")
    if pos is not None:
        assert np.allclose(np.asarray(pos)[order],
                           cube.interior_point(np.full(5, row), np.full(5, col), np.arange(5)),
                           atol=1e-4)


def test_spotlight_works_with_a_sweep(played):
    """In a vmprod sweep the result is revealed row by row; the spotlight stays on its cell
    and the operands' row and column stay lit at every frame."""
    plan = played["scenes"]["spot_sweep"]["plan"]
    masks = _spotlight_masks(plan, 1, 4)
    frames = played["out"]["frames"]
    for f in ("1", "2", "3", "4"):
        for key in (plan.spotlight.left, plan.spotlight.right):
            geo = _geometry(frames[f][f"spot_sweep:{key}"])
            assert np.array_equal(np.asarray(geo["spotlit"], bool), masks[key]), (f, key)
        result = _geometry(frames[f][f"spot_sweep:{plan.spotlight.result}"])
        assert sum(result.get("spotlit", [])) <= 1
    # row 1 of the result is written by step 1 (frame 2 onwards): its spotlit cell shows
    assert sum(_geometry(frames["4"][f"spot_sweep:{plan.spotlight.result}"])["spotlit"]) == 1


def test_axes_present_when_asked(played):
    out = played["out"]
    rec = out["frames"]["1"]
    assert rec["lens_cube:axes"]["mesh_vertices"] > 0
    assert rec["lens_cube:axes_heads"]["mesh_faces"] > 0
    assert sorted(rec[f"lens_cube:label:axis.{a}"]["body"] for a in "ijk") == ["i", "j", "k"]
    assert not any(n.startswith("lens_sphere:axes") or n.startswith("lens_sphere:label:axis")
                   for n in out["objects"])


def _lens_text(numbers) -> dict:
    """{cell index: the text drawn} from the characters' instance attributes."""
    text: dict = {}
    for i, slot, glyph in zip(numbers["lens_index"], numbers["lens_slot"], numbers["lens_glyph"]):
        text.setdefault(i, {})[slot] = GLYPHS[glyph]
    return {i: "".join(c[k] for k in sorted(c)) for i, c in text.items()}


def _instances(obj) -> dict:
    dg = bpy.context.evaluated_depsgraph_get()
    gs = obj.evaluated_get(dg).evaluated_geometry()
    pc = gs.instances_pointcloud()
    out = {"n": len(pc.points)}
    for name in ("lens_index", "lens_slot", "lens_glyph", "lens_value"):
        attr = pc.attributes[name]
        buf = np.empty(len(pc.points), np.float32 if attr.data_type == "FLOAT" else np.int32)
        attr.data.foreach_get("value", buf)
        out[name] = buf.tolist()
    return out


@pytest.mark.parametrize("value, text", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf"),
                                         (-0.001, "0.00"), (12345.67, "12345.67"),
                                         (2.5e7, "25000000"), (-7.0, "-7.00")])
def test_the_lens_writes_nan_inf_and_big_numbers(matmul_plan, value, text):
    from mm_blender.core.plan import LensPlan
    plan = matmul_plan(name="special")
    result = plan.matrix("L@R")
    result.values[7] = value                   # cell (1, 2)
    plan.lens = LensPlan(position=result.positions[7].astype(np.float64), radius=0.5,
                         text_size=0.5, decimals=2, spread=2.0)
    buildmod.build(plan)
    numbers = _instances(bpy.data.objects["special:lens_numbers"])
    assert _lens_text(numbers) == {7: text}


def test_a_rebuild_replaces_lens_spotlight_and_axes():
    spec = specmod.from_dict(scene("again", axes=True))
    plan = make_plan(spec, evaluate(spec))
    buildmod.build(plan)
    first = sorted(o.name for o in bpy.data.objects)
    buildmod.build(plan)
    assert sorted(o.name for o in bpy.data.objects) == first
    for name in ("again:lens", "again:lens_numbers", "again:spotlight", "again:axes",
                 "again:spotlight_products"):
        assert name in bpy.data.objects
    numbers = _instances(bpy.data.objects["again:lens_numbers"])
    assert numbers["n"] > 0
    assert bpy.data.objects["again:lens_numbers"]["mm_matrices"][0] == plan.matrices[0].key


def test_add_lens_to_a_build_and_not_twice():
    spec = specmod.from_dict(scene("plain", shape="cube") | {"deco": {}})
    coll = buildmod.build(make_plan(spec, evaluate(spec)))
    empty, numbers = overlays.add_lens(coll, radius=1.5)
    dg = bpy.context.evaluated_depsgraph_get()
    gs = numbers.evaluated_get(dg).evaluated_geometry()
    assert len(gs.instances_pointcloud().points) > 0
    assert empty.name == "plain:lens"
    with pytest.raises(MMError, match="already has a lens"):
        overlays.add_lens(coll)
    buildmod.remove("plain")
    assert "plain:lens" not in bpy.data.objects and "plain:lens_numbers" not in bpy.data.objects


def _pixels(path) -> np.ndarray:
    img = bpy.data.images.load(str(path))
    try:
        w, h = img.size
        px = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(img)
    return px.reshape(h, w, 4)[::-1, :, :3]


def test_cycles_render_shows_the_numbers_inside_the_lens(tmp_path):
    """The same front view with and without the numbers: they change the picture only
    around the lens, and there in the labels' light colour."""
    from bpy_extras.object_utils import world_to_camera_view
    spec = specmod.from_dict({"name": "lens_px", "expr": "L @ R", "deco": {
        "lens": True, "lens_size": 0.3, "magnification": 10, "lens_decimals": 1,
        "legends": 0, "shape_labels": False, "row_guides": 0, "flow_guides": 0,
        "outlines": False}, "look": {"view": "front"},
        "matrix": {"L": {"h": 8, "w": 4, "init": "gaussian"},
                   "R": {"h": 4, "w": 12, "init": "gaussian"}}})
    plan = make_plan(spec, evaluate(spec))
    buildmod.build(plan)
    scene = bpy.context.scene
    numbers = bpy.data.objects["lens_px:lens_numbers"]
    kw = dict(resolution=(240, 150), samples=2, device="cpu", denoise=False)
    with_lens = _pixels(render_still(tmp_path / "with.png", **kw))
    numbers.hide_render = True
    without = _pixels(render_still(tmp_path / "without.png", **kw))
    changed = np.abs(with_lens - without).max(axis=2) > 0.15
    assert changed.sum() > 50
    # where the loupe is on screen: over the face, in front of the lens centre
    from mathutils import Vector
    cam = scene.camera
    lens = plan.lens
    centre = Vector(bpy.data.objects["lens_px:lens"].location)
    toward = (cam.matrix_world.translation - centre).normalized()
    front = centre + toward * overlays.lens_lift(lens)
    right = cam.matrix_world.to_3x3() @ Vector((1, 0, 0))
    c = world_to_camera_view(scene, cam, front)
    rim = world_to_camera_view(scene, cam, front + right * (lens.radius * lens.spread + 2.0))
    h, w = changed.shape
    cx, cy, r = c.x * w, (1 - c.y) * h, abs(rim.x - c.x) * w
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    assert changed[~inside].sum() <= 0.02 * changed.sum()
    # the digits are drawn in the dark look's label colour: light, bluish white
    new_light = changed & (with_lens.min(axis=2) > 0.45) & (without.min(axis=2) < 0.45)
    assert new_light.sum() > 20
    # and the loupe's disc darkens what it covers
    assert with_lens[inside].mean() < without[inside].mean() + 0.05
