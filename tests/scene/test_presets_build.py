"""Real presets end to end: spec -> values -> plan -> scene (no render); every sweep preset
also animated and played."""
import tomllib

import bpy
import numpy as np
import pytest

from mm_blender import api
from mm_blender.core import presets, scene_plan
from mm_blender.core import spec as specmod
from mm_blender.scene import cells
from mm_blender.scene.animate import schedule_for
from mm_blender.scene.build import build

SMALL = ["intro_cube", "ffn", "binary_partition", "right_assoc_mlp", "data_parallel"]


def cell_count(obj) -> int:
    """Drawn cells of either shape: cube instances, or the points of the sphere cloud."""
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = obj.evaluated_get(dg).evaluated_geometry()   # keep the GeometrySet alive
    instances = geometry.instances_pointcloud()
    cloud = instances if instances is not None else geometry.pointcloud
    return 0 if cloud is None else len(cloud.points)


def plan_of(name):
    return scene_plan.plan_from_spec(presets.load(name), allow_network=False)


@pytest.mark.parametrize("name", SMALL)
def test_preset_builds_with_its_values(name, products_in_blender):
    plan = plan_of(name)
    coll = build(plan)
    objs = {o["mm_key"]: o for o in coll.all_objects if "mm_key" in o}
    assert set(objs) == {m.key for m in plan.matrices}
    for m in plan.matrices:
        o = objs[m.key]
        assert (o["mm_name"], o["mm_rows"], o["mm_cols"], o["mm_role"]) == \
            (m.name, m.rows, m.cols, m.role)
        assert np.array_equal(cells.read_values(o), m.values, equal_nan=True)
        assert np.array_equal(cells.read_positions(o), m.positions)
        assert cell_count(o) == int((m.sizes > 0).sum())
        if m.role == "result":
            left = bpy.data.objects[o["mm_left"]]
            right = bpy.data.objects[o["mm_right"]]
            assert left["mm_key"] == m.left and right["mm_key"] == m.right
            assert o["mm_epilogue"] == m.epilogue
    roots = [m for m in plan.matrices if m.role == "result" and m.path == ""]
    assert len(roots) == 1
    # against numpy, not the plan: a result the plan got wrong (e.g. transposed) fails here
    assert products_in_blender(objs.values()) == sum(m.role == "result" for m in plan.matrices)


def small_sweep_spec(name):
    """A sweep preset as a spec, scaled down where it is big: a model head reads 16 tokens,
    other large presets have every side divided by 8 (their sides are multiples of 8).
    GPT-2 heads (no weights offline; tests/models covers that error) get gaussian data of
    the same shapes."""
    data = tomllib.loads(presets.resolve(name).read_text(encoding="utf-8"))
    tokens = data.get("model", {}).get("tokens")
    if tokens:
        data["model"]["tokens"] = 16
        for leaf in data["matrix"].values():
            for side in ("h", "w"):
                leaf[side] = 16 if leaf.get(side) == tokens else leaf[side]
    elif presets.load(name).cell_count() > 60_000:
        for leaf in data["matrix"].values():
            assert leaf["h"] % 8 == 0 and leaf["w"] % 8 == 0, name
            leaf["h"], leaf["w"] = leaf["h"] // 8, leaf["w"] // 8
    if data.get("model", {}).get("model", "").startswith("gpt2"):
        del data["model"]
        for leaf in data["matrix"].values():
            if leaf.get("init") == "model":
                leaf["init"] = "gaussian"
    return specmod.from_dict(data, name=name)


def evaluated(obj) -> dict:
    """The cells an object draws at the current frame (cube instances, or a point cloud of
    spheres): their `value`s."""
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = obj.evaluated_get(dg).evaluated_geometry()   # keep the GeometrySet alive
    cloud = geometry.instances_pointcloud() or geometry.pointcloud
    if cloud is None or not len(cloud.points):
        return {"n": 0, "value": np.zeros(0, np.float32)}
    values = np.empty(len(cloud.points), np.float32)
    cloud.attributes["value"].data.foreach_get("value", values)
    return {"n": len(values), "value": values}


SWEEPS = [p.name for p in presets.list_presets() if presets.load(p.name).anim.alg != "none"]


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_preset_plays_its_schedule(name):
    """Built, animated and played at a frame part-way through: every animated matmul's
    products in flight and result cells written are those of its schedule (core/sweep.py)."""
    spec = small_sweep_spec(name)
    coll = api.build(spec, allow_network=False)          # as every door builds
    plan = api.plan_spec(spec, allow_network=False)      # the same plan again, to compare
    sched = schedule_for(plan, spec)
    scene = bpy.context.scene
    start, end = scene.frame_start, scene.frame_end
    assert (start, end) == sched.frame_range and end > start and sched.sweeps
    objects = {o.get("mm_key"): o for o in coll.all_objects if o.get("mm_role") == "result"}
    products = {o["mm_matmul"]: o for o in coll.all_objects if o.get("mm_role") == "products"}
    frame = (start + end) // 2
    scene.frame_set(frame)
    step = sched.step_at(frame)
    midway = 0
    for key, sw in sched.sweeps.items():
        t = sched.local(key, step)
        midway += 0 <= t < sw.steps
        left, right = plan.matrix(sw.left).values, plan.matrix(sw.right).values
        *_, v = sw.products(t, left, right)
        shown = evaluated(products[objects[key].name])
        assert shown["n"] == int((v != 0).sum()), (name, key, frame, t)
        np.testing.assert_allclose(np.sort(shown["value"]), np.sort(v[v != 0]), rtol=1e-6)
        result = plan.matrix(key)
        written = sw.written(t).ravel()
        if sw.accumulates and sw.active(t):
            expect = sw.partial(t, left, right).ravel()
            drawn = written & (expect != 0)
            want = expect[drawn]
        else:
            drawn = written & (result.sizes > 0)
            want = result.values[drawn]
        shown = evaluated(objects[key])
        assert shown["n"] == int(drawn.sum()), (name, key, frame, t)
        np.testing.assert_allclose(np.sort(shown["value"]), np.sort(want), rtol=1e-5, atol=1e-6)
    assert midway >= 1, f"{name}: nothing is in flight at frame {frame}"
