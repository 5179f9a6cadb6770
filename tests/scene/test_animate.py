"""Sweeps as keyframes + Geometry Nodes (scene/animate.py): build small scenes for every
algorithm, animate, save the .blend, then play it in a fresh Python that imports only bpy and
numpy and compare what it evaluates with numpy, frame by frame, cell by cell."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import bpy
import numpy as np
import pytest

from mm_blender.core import colour
from mm_blender.core import spec as specmod
from mm_blender.core.evaluate import evaluate
from mm_blender.core.scene_plan import make_plan
from mm_blender.scene import animate as animod
from mm_blender.scene import build as buildmod
from mm_blender.scene import nodes, sweep_nodes

ATTENTION = "out = (attn = (Q = input @ wQ) @ (K_t = wK_t @ input_t)) @ (V = input @ wV) @ wO"


def single(name, alg, h=5, k=4, w=6, blocks=(1, 1, 1), epilogue="none", viz=None, **anim):
    return dict(name=name, expr="L @ R", anim=dict(alg=alg, frames_per_step=1, **anim),
                blocks=dict(i=blocks[0], j=blocks[1], k=blocks[2]), viz=viz or {},
                matrix=dict(L=dict(h=h, w=k, init="gaussian"), R=dict(h=k, w=w, init="gaussian")),
                matmul={"L @ R": dict(epilogue=epilogue)})


SCENES = [
    single("sw_vmprod", "vmprod", blocks=(2, 1, 1), epilogue="relu"),
    single("sw_mvprod", "mvprod", blocks=(1, 2, 2)),                 # k-block planes
    single("sw_vvprod", "vvprod", k=5, blocks=(1, 1, 2), epilogue="gelu",
           frames_per_step_override=2),
    single("sw_dot_row", "dotprod (row major)", h=4, w=5, blocks=(2, 2, 1)),
    single("sw_dot_col", "dotprod (col major)", h=4, w=3, viz=dict(colormap="diverging")),
    single("sw_axpy", "axpy", h=3, k=5, w=4, blocks=(1, 2, 2), epilogue="x/sqrt(k)",
           viz=dict(sensitivity="global")),
    dict(name="sw_attention", expr=ATTENTION, anim=dict(alg="vmprod", fuse="sync",
                                                        frames_per_step=1),
         matrix=dict(input=dict(h=6, w=8, init="gaussian"),
                     input_t=dict(h=8, w=6, init="transpose", source="input"),
                     wQ=dict(h=8, w=3, init="gaussian"), wK_t=dict(h=3, w=8, init="gaussian"),
                     wV=dict(h=8, w=3, init="gaussian"), wO=dict(h=3, w=8, init="gaussian")),
         matmul={"K_t": dict(alg="none"), "V": dict(alg="none"),
                 "attn": dict(epilogue="softmax(tril(x/sqrt(k)))")}),
    # last: it owns the scene's camera (spin) and frame range
    single("sw_hide_spin", "vmprod", h=4, hide_inputs=True, spin=2.0),
]
for _data in SCENES:
    fps = _data["anim"].pop("frames_per_step_override", None)
    if fps:
        _data["anim"]["frames_per_step"] = fps

PLAYER = textwrap.dedent(r'''
    import json, sys
    import bpy
    import numpy as np

    def read(obj, dg):
        out = {"hide_render": bool(obj.hide_render), "hide_viewport": bool(obj.hide_viewport)}
        if obj.hide_viewport:
            return out
        gs = obj.evaluated_get(dg).evaluated_geometry()   # keep the GeometrySet alive
        # cells are cube instances or (sphere, the default) the points of a point cloud
        pc = gs.instances_pointcloud()
        instanced = pc is not None
        if not instanced:
            pc = gs.pointcloud
        n = len(pc.points) if pc is not None else 0
        out["n"] = n
        if not n:
            return out
        if instanced:
            # bpy 5.0.1: the instances pointcloud's `position` is not filled in; the
            # translation of `instance_transform` (column-major 4x4) is where each sits.
            xf = np.empty(n * 16, np.float32)
            pc.attributes["instance_transform"].data.foreach_get("value", xf)
            out["position"] = xf.reshape(n, 16)[:, 12:15].tolist()
        else:
            co = np.empty(n * 3, np.float32)
            pc.attributes["position"].data.foreach_get("vector", co)
            out["position"] = co.reshape(n, 3).tolist()
        for name, attr in pc.attributes.items():
            if name.startswith(".") or name in ("instance_transform", "position"):
                continue
            width = {"FLOAT": 1, "INT": 1, "FLOAT_VECTOR": 3, "FLOAT_COLOR": 4}.get(attr.data_type)
            if width is None:
                continue
            prop = {"FLOAT": "value", "INT": "value", "FLOAT_VECTOR": "vector",
                    "FLOAT_COLOR": "color"}[attr.data_type]
            buf = np.empty(n * width, np.int32 if attr.data_type == "INT" else np.float32)
            attr.data.foreach_get(prop, buf)
            out[name] = buf.reshape(n, width).tolist() if width > 1 else buf.tolist()
        return out

    blend, query = sys.argv[1], json.loads(sys.argv[2])
    bpy.ops.wm.open_mainfile(filepath=blend)
    scene = bpy.context.scene
    result = {"mm_blender_loaded": any(m.split(".")[0] == "mm_blender" for m in sys.modules),
              "frame_range": [scene.frame_start, scene.frame_end], "frames": {}}
    for f in query["frames"]:
        scene.frame_set(f)
        dg = bpy.context.evaluated_depsgraph_get()
        rec = {name: read(bpy.data.objects[name], dg) for name in query["objects"]}
        rec["camera"] = [list(row) for row in scene.camera.matrix_world]
        result["frames"][str(f)] = rec
    print("MM_JSON:" + json.dumps(result))
''')


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """Build and animate every scene into one file, save it, play it in a fresh process."""
    tmp = tmp_path_factory.mktemp("animate")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scenes = {}
    objects = []
    for data in SCENES:
        spec = specmod.from_dict(data)
        plan = make_plan(spec, evaluate(spec))
        coll = buildmod.build(plan)
        camera_before = [list(r) for r in bpy.context.scene.camera.matrix_world]
        frames = animod.animate(plan, spec, coll)
        sched = animod.schedule_for(plan, spec)
        names = {o.get("mm_key") or o.get("mm_role"): o.name for o in coll.all_objects}
        by_role = {}
        for o in coll.all_objects:
            if o.get("mm_role") in ("products", "k_planes"):
                by_role[(o["mm_role"], o["mm_matmul"])] = o.name
            if o.get("mm_role") == "highlight":
                by_role[("highlight", o["mm_operand"])] = o.name
        scenes[spec.name] = dict(spec=spec, plan=plan, sched=sched, frames=frames,
                                 names=names, by_role=by_role, camera=camera_before)
        objects += [o.name for o in coll.all_objects
                    if o.get("mm_role") in ("leaf", "result", "products", "k_planes",
                                            "highlight")]
    blend = tmp / "sweeps.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    last = max(s["frames"][1] for s in scenes.values())
    query = {"frames": list(range(1, last + 2)), "objects": objects}
    script = tmp / "play.py"
    script.write_text(PLAYER)
    proc = subprocess.run([sys.executable, str(script), str(blend), json.dumps(query)],
                          capture_output=True, text=True, cwd=str(tmp), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("MM_JSON:"))
    out = json.loads(line[len("MM_JSON:"):])
    return dict(scenes=scenes, out=out, blend=blend)


def _frames(played, name):
    s = played["scenes"][name]
    a, b = s["frames"]
    return s, range(a, b + 2)     # one frame past the end: still complete


def _cell_index(positions: np.ndarray):
    return {tuple(np.round(p, 3)): n for n, p in enumerate(np.asarray(positions, np.float64))}


def _lookup(index, positions):
    return np.array([index[tuple(np.round(p, 3))] for p in np.asarray(positions, np.float64)],
                    dtype=int)


def _gmax(plan):
    return max(colour.finite_absmax(m.values) for m in plan.matrices)


def test_player_is_plain_blender(played):
    assert played["out"]["mm_blender_loaded"] is False


def test_frame_range_covers_the_sweep(played):
    s = played["scenes"]["sw_hide_spin"]
    assert played["out"]["frame_range"] == list(s["frames"])
    for name, s in played["scenes"].items():
        a, b = s["frames"]
        assert (a, b) == s["sched"].frame_range, name
        assert s["sched"].step_at(b) == s["sched"].n_steps - 1


@pytest.mark.parametrize("name", [d["name"] for d in SCENES])
def test_products_in_flight(played, name):
    s, frames = _frames(played, name)
    spec, plan, sched = s["spec"], s["plan"], s["sched"]
    checked = 0
    for f in frames:
        step = sched.step_at(f)
        rec = played["out"]["frames"][str(f)]
        for key, sw in sched.sweeps.items():
            obs = rec[s["by_role"][("products", s["names"][key])]]
            t = sched.local(key, step)
            L = plan.matrix(sw.left).values
            R = plan.matrix(sw.right).values
            i, k, j, v = sw.products(t, L, R)
            keep = v != 0                      # zero is not drawn
            i, k, j, v = i[keep], k[keep], j[keep], v[keep]
            assert obs.get("n", 0) == len(v), (name, key, f, t)
            if not len(v):
                continue
            got = np.stack([obs["i"], obs["k"], obs["j"]], axis=1)
            order = np.lexsort((got[:, 2], got[:, 1], got[:, 0]))
            want = np.lexsort((j, k, i))
            np.testing.assert_array_equal(got[order], np.stack([i, k, j], axis=1)[want])
            value = np.asarray(obs["value"], np.float32)[order]
            np.testing.assert_allclose(value, v[want], rtol=2e-7, atol=0)
            cube = next(c for c in plan.cubes if c.key == key)
            pos = np.asarray(obs["position"])[order]
            np.testing.assert_allclose(pos, cube.interior_point(i, j, k)[want], atol=1e-4)
            rng = animod._products_range(L.reshape(sw.rows, sw.depth),
                                         R.reshape(sw.depth, sw.cols), spec.viz, _gmax(plan))
            np.testing.assert_allclose(np.asarray(obs["color"])[order],
                                       colour.colors(v[want], rng, spec.viz), atol=2e-4)
            np.testing.assert_allclose(np.asarray(obs["size"])[order],
                                       colour.sizes(v[want], rng, spec.viz), atol=1e-4)
            checked += len(v)
    assert checked > 0


@pytest.mark.parametrize("name", [d["name"] for d in SCENES])
def test_result_cells_written_so_far(played, name):
    s, frames = _frames(played, name)
    spec, plan, sched = s["spec"], s["plan"], s["sched"]
    partial_frames = 0
    for key, sw in sched.sweeps.items():
        res = plan.matrix(key)
        index = _cell_index(res.positions)
        L, R = plan.matrix(sw.left).values, plan.matrix(sw.right).values
        rng = colour.value_range(res.values, spec.viz.sensitivity, _gmax(plan))
        for f in frames:
            t = sched.local(key, sched.step_at(f))
            obs = played["out"]["frames"][str(f)][s["names"][key]]
            cells = _lookup(index, obs.get("position", np.zeros((0, 3))))
            values = np.asarray(obs.get("value", []), np.float32)
            written = sw.written(t).ravel()
            if sw.accumulates and sw.active(t):
                expect = sw.partial(t, L, R).ravel().astype(np.float32)
                shown = written & (expect != 0)
                partial_frames += 1
                np.testing.assert_array_equal(np.sort(cells), np.flatnonzero(shown))
                np.testing.assert_allclose(values, expect[cells], rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(np.asarray(obs["color"]),
                                           colour.colors(expect[cells], rng, spec.viz), atol=2e-4)
            else:
                shown = written & (res.sizes > 0)
                np.testing.assert_array_equal(np.sort(cells), np.flatnonzero(shown),
                                              err_msg=f"{name} {key} frame {f} step {t}")
                np.testing.assert_array_equal(values, res.values[cells])
                if len(cells):
                    np.testing.assert_allclose(np.asarray(obs["color"]), res.colors[cells],
                                               atol=1e-6)
    if any(sw.accumulates for sw in sched.sweeps.values()):
        assert partial_frames > 0


@pytest.mark.parametrize("name", ["sw_vmprod", "sw_mvprod", "sw_vvprod", "sw_dot_row",
                                  "sw_dot_col", "sw_axpy", "sw_attention"])
def test_inputs_highlighted(played, name):
    """The cells in flight of each operand are drawn over it, brighter and larger; the
    operand object itself never changes."""
    s, frames = _frames(played, name)
    plan, sched = s["plan"], s["sched"]
    boost = np.array([animod.HIGHLIGHT_BOOST] * 3 + [0.0])
    lit_total = 0
    for key, sw in sched.sweeps.items():
        for side, mask_of in ((sw.left, sw.left_highlight), (sw.right, sw.right_highlight)):
            mat = plan.matrix(side)
            index = _cell_index(mat.positions)
            hl_name = s["by_role"].get(("highlight", s["names"][side]))
            for f in frames:
                t = sched.local(key, sched.step_at(f))
                rec = played["out"]["frames"][str(f)]
                if mat.role == "leaf":
                    base = rec[s["names"][side]]          # the operand: static
                    np.testing.assert_array_equal(np.asarray(base["color"]),
                                                  mat.colors[_lookup(index, base["position"])])
                lit = mask_of(t).ravel() & (mat.sizes > 0)
                if hl_name is None:
                    assert not lit.any()
                    continue
                obs = rec[hl_name]
                assert obs.get("n", 0) == lit.sum(), (name, side, f)
                if not lit.sum():
                    continue
                cells = _lookup(index, obs["position"])
                np.testing.assert_array_equal(np.sort(cells), np.flatnonzero(lit))
                np.testing.assert_allclose(np.asarray(obs["color"]),
                                           mat.colors[cells] + boost, atol=1e-6)
                np.testing.assert_allclose(np.asarray(obs["size"]),
                                           mat.sizes[cells] * animod.HIGHLIGHT_GROW, rtol=1e-6)
                np.testing.assert_array_equal(np.asarray(obs["value"], np.float32),
                                              mat.values[cells])
                lit_total += lit.sum()
    assert lit_total > 0


def test_k_block_planes(played):
    s, frames = _frames(played, "sw_mvprod")
    plan, sched = s["plan"], s["sched"]
    (key, sw), = sched.sweeps.items()
    assert sw.k_planes and sw.k.blocks == 2
    planes = sw.block_sums(plan.matrix("L").values, plan.matrix("R").values)
    seen = 0
    for f in frames:
        t = sched.local(key, sched.step_at(f))
        obs = played["out"]["frames"][str(f)][s["by_role"][("k_planes", s["names"][key])]]
        if not sw.active(t):
            assert obs.get("n", 0) == 0
            continue
        shown = np.broadcast_to(sw.written(t), planes.shape) & (planes != 0)
        assert obs["n"] == shown.sum()
        np.testing.assert_allclose(np.sort(obs["value"]),
                                   np.sort(planes[shown].astype(np.float32)), rtol=1e-6)
        seen += 1
    assert seen == sw.steps


def test_attention_rows_travel_through_the_fused_chain(played):
    s, frames = _frames(played, "sw_attention")
    sched = s["sched"]
    assert list(sched.sweeps) == ["Q", "attn", "attn @ V", "out"]
    assert sched.n_steps == 7
    for f in frames:
        step = sched.step_at(f)
        rec = played["out"]["frames"][str(f)]
        for key in sched.sweeps:
            obs = rec[s["by_role"][("products", s["names"][key])]]
            if step < 6:
                assert set(obs["i"]) == {step}, (key, f)
            else:
                assert obs.get("n", 0) == 0


def test_hide_inputs_and_spin(played):
    s, frames = _frames(played, "sw_hide_spin")
    sched = s["sched"]
    a, b = s["frames"]
    for f in frames:
        rec = played["out"]["frames"][str(f)]
        for leaf in ("L", "R"):
            hidden = rec[s["names"][leaf]]
            assert hidden["hide_render"] == (f <= b) and hidden["hide_viewport"] == (f <= b)
    # the camera turns about the vertical through the plan's centre, 2 s a turn
    plan = s["plan"]
    centre = (np.asarray(plan.bounds_min, float) + np.asarray(plan.bounds_max, float)) / 2
    first = np.asarray(played["out"]["frames"][str(a)]["camera"])
    np.testing.assert_allclose(first, np.asarray(s["camera"]), atol=1e-5)   # starts as built
    for f in (a + 1, b):
        cam = np.asarray(played["out"]["frames"][str(f)]["camera"])
        angle = 2 * math.pi * (f - a) / sched.fps / 2.0
        c, s_ = math.cos(angle), math.sin(angle)
        rot = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
        np.testing.assert_allclose(cam[:3, 3], centre + rot @ (first[:3, 3] - centre), atol=1e-3)
        np.testing.assert_allclose(cam[:3, :3], rot @ first[:3, :3], atol=1e-4)


# --- in-process: API, keyframes, clean-up ------------------------------------------------------

def _small(alg="vvprod", **anim):
    spec = specmod.from_dict(single("small", alg, **anim))
    plan = make_plan(spec, evaluate(spec))
    coll = buildmod.build(plan)
    return spec, plan, coll


def test_keyframes_are_constant_steps_on_socket_2():
    spec, plan, coll = _small("vvprod")
    start, end = animod.animate(plan, spec, coll)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (start, end) == (1, 5)
    prod = next(o for o in coll.all_objects if o.get("mm_role") == "products")
    result = bpy.data.objects["small:L @ R"]
    assert prod["mm_matmul"] == result.name
    assert [m.name for m in result.modifiers] == ["mm_sweep", nodes.CELLS_MODIFIER]
    assert [m.name for m in bpy.data.objects["small:L"].modifiers] == [nodes.CELLS_MODIFIER]
    highlights = {o["mm_operand"]: o for o in coll.all_objects if o.get("mm_role") == "highlight"}
    assert sorted(highlights) == ["small:L", "small:R"]       # vvprod: L's column, R's row
    from bpy_extras import anim_utils
    for obj, mod in ((prod, "mm_sweep"), (result, "mm_sweep"), (highlights["small:L"], "mm_sweep")):
        ad = obj.animation_data
        bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
        fc = bag.fcurves.find(f'modifiers["{mod}"]["Socket_2"]')
        assert fc is not None
        keys = [(k.co[0], k.co[1], k.interpolation) for k in fc.keyframe_points]
        assert keys == [(1.0 + s, float(s), "CONSTANT") for s in range(5)]
    for group in (sweep_nodes.products_group(), sweep_nodes.result_group(),
                  sweep_nodes.highlight_group()):
        step = next(s for s in group.interface.items_tree if s.name == "Step")
        assert step.identifier == "Socket_2"


def test_animate_again_and_clear():
    spec, plan, coll = _small("mvprod", hide_inputs=True, spin=3.0)
    cam = bpy.context.scene.camera
    built = cam.matrix_world.copy()
    animod.animate(plan, spec, coll)
    bpy.context.scene.frame_set(4)            # the pivot has turned
    assert (cam.matrix_world.translation - built.translation).length > 1e-3
    count = len(bpy.data.objects)
    animod.animate(plan, spec, coll)
    assert len(bpy.data.objects) == count
    animod.clear(coll)
    assert not [o for o in bpy.data.objects if o.get("mm_sweep")]
    assert cam.parent is None
    np.testing.assert_allclose(np.array(cam.matrix_world), np.array(built), atol=1e-5)
    for obj in coll.all_objects:
        assert "mm_sweep" not in obj.modifiers
        assert not obj.hide_render
    animod.animate(plan, spec, coll)
    assert buildmod.remove(plan.name)
    assert not [o for o in bpy.data.objects if o.get("mm_sweep")]
    assert not [m for m in bpy.data.meshes if m.get("mm_sweep")]


def test_nothing_to_animate():
    spec, plan, coll = _small("none")
    before = len(bpy.data.objects)
    assert animod.animate(plan, spec, coll) == (1, 1)
    assert len(bpy.data.objects) == before


@pytest.mark.parametrize("epilogue", ["none", "relu", "gelu", "sigmoid", "silu", "tanh", "x**2",
                                      "x/k", "x/sqrt(k)"])
def test_pointwise_epilogues_in_nodes(epilogue):
    """Partial sums go through the pointwise epilogue group: it must agree with numpy."""
    from mm_blender.core.evaluate import POINTWISE_EPILOGUES, apply_epilogue
    x = np.concatenate([np.linspace(-9, 9, 181), [-1e-3, 1e-3, 0.0]]).astype(np.float32)
    mesh = bpy.data.meshes.new("pw")
    mesh.vertices.add(len(x))
    mesh.attributes.new("value", "FLOAT", "POINT").data.foreach_set("value", x)
    obj = bpy.data.objects.new("pw", mesh)
    bpy.context.scene.collection.objects.link(obj)
    group = bpy.data.node_groups.new("pw_test", "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    t = sweep_nodes._Net(group)
    gin = t.node("NodeGroupInput")
    pw = t.subgroup(sweep_nodes.pointwise_group(), Value=t.named("value"),
                    Epilogue=POINTWISE_EPILOGUES.index(epilogue), K=48.0)
    out = t.node("NodeGroupOutput")
    t.link(t.store(gin.outputs["Geometry"], "value", pw.outputs["Value"]), out.inputs[0])
    obj.modifiers.new("pw", "NODES").node_group = group
    dg = bpy.context.evaluated_depsgraph_get()
    got = np.empty(len(x), np.float32)
    obj.evaluated_get(dg).data.attributes["value"].data.foreach_get("value", got)
    want = apply_epilogue(x.astype(np.float64), epilogue, 48)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
