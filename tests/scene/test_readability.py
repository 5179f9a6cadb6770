"""Every text reads from the camera: inside the frame, covered by no geometry (rays from the
camera to points over each text: Scene.ray_cast for meshes, an exact ray test for every
cell), clear of the other texts, and tall enough at mm's 1280x800. Every static preset, sweep
frames, a landscape and a portrait frame."""
import dataclasses

import bpy
import numpy as np
import pytest

from mm_blender import api
from mm_blender.core import presets, scene_plan
from mm_blender.scene import camera as cameramod
from mm_blender.scene import readability as rd
from mm_blender.scene.build import build

LANDSCAPE = rd.REFERENCE_RESOLUTION      # mm's screenshot size: the pixel rule holds here
PORTRAIT = (800, 1000)
BIG = 300_000     # cells: checked with spheres only (what ships; cubes at 1M take minutes)


def _offline(info) -> bool:
    spec = presets.load(info.name)
    return spec.model is None or not spec.model.model.startswith("gpt2")   # no GPT-2 here


STATIC = [i.name for i in presets.list_presets()
          if presets.load(i.name).anim.alg == "none" and _offline(i)]
# (preset, fraction of the sweep)
SWEEPS = [("vmprod", 0.5), ("identity_mirror", 0.66), ("binary_sweep", 0.4),
          ("data_parallel_vmprod", 0.4)]


def built(name, shape, title=False, look=None):
    spec = presets.load(name)
    spec.viz = dataclasses.replace(spec.viz, cell_shape=shape)
    spec.deco = dataclasses.replace(spec.deco, title=title)
    plan = api.plan_spec(spec, allow_network=False)   # model presets: their capture
    coll = build(plan, look=look)
    from mm_blender.scene.animate import animate
    animate(plan, spec, coll)
    return spec, coll


def assert_readable(coll, resolutions=(LANDSCAPE, PORTRAIT)):
    scene = bpy.context.scene
    for res in resolutions:
        scene.render.resolution_x, scene.render.resolution_y = res
        cameramod.refit(scene.camera, scene)
        views = rd.inspect(scene, coll, resolution=res)
        assert views, "no texts"
        bad = rd.problems(views, check_height=res == LANDSCAPE)
        assert not bad, f"{coll.name} at {res[0]}x{res[1]}: {bad}"


@pytest.mark.parametrize("name", STATIC)
def test_static_preset_texts_read(name):
    spec, coll = built(name, "sphere", title=scene_plan.is_compound(presets.load(name)))
    assert_readable(coll)
    if spec.cell_count() <= BIG:     # and with cube cells, which ray_cast sees
        _, coll = built(name, "cube")
        assert_readable(coll)


def spec_of(name):
    return presets.load(name)


@pytest.mark.parametrize("name", ["binary", "full_layer"])
def test_paper_look_texts_read(name):
    """The paper look draws wider guides; its texts read too."""
    _, coll = built(name, "sphere", title=True, look="paper")
    assert_readable(coll)


@pytest.mark.parametrize("name,fraction", SWEEPS)
def test_sweep_frame_texts_read(name, fraction):
    _, coll = built(name, "sphere")
    scene = bpy.context.scene
    scene.frame_set(round(scene.frame_start + fraction * (scene.frame_end - scene.frame_start)))
    assert_readable(coll)


def _text(coll, suffix):
    return next(o for o in rd.texts(coll) if o.name.endswith(suffix))


@pytest.mark.parametrize("shape", ["cube", "sphere"])
def test_a_text_behind_a_face_is_reported_covered(shape):
    """The check can fail: a name pushed behind its own face is covered by that face's
    cells, whatever their shape; numpy and ray_cast agree on cubes."""
    _, coll = built("intro_cube", shape)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = LANDSCAPE
    cameramod.refit(scene.camera, scene)
    name = _text(coll, "label:L.name")
    normal = np.array(name.matrix_world.to_3x3().col[2])
    name.location = np.array(name.location) - normal * 3.0      # through the face
    bpy.context.view_layer.update()
    # many rays: the face's small cells leave gaps a few rays see through
    views = {v.name: v for v in rd.inspect(scene, coll, resolution=LANDSCAPE, samples=9)}
    assert "intro_cube:L" in views[name.name].blocked
    if shape == "cube":
        by_ray = {v.name: v for v in rd.inspect(scene, coll, resolution=LANDSCAPE, samples=9,
                                                ray_cast_cells=True)}
        assert "intro_cube:L" in by_ray[name.name].blocked
        for key, v in views.items():
            assert bool(v.blocked) == bool(by_ray[key].blocked), key


def test_outside_overlapping_and_small_texts_are_reported():
    _, coll = built("intro_cube", "sphere")
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = LANDSCAPE
    cameramod.refit(scene.camera, scene)
    cam = scene.camera.matrix_world
    rows = _text(coll, "label:L.rows")
    cols = _text(coll, "label:L.cols")
    rows.location = np.array(rows.location) + np.array(cam.to_3x3().col[0]) * 500
    cols.data.size = 0.05
    r = _text(coll, "label:R.rows")
    c = _text(coll, "label:R.cols")
    c.location = r.location.copy()
    bpy.context.view_layer.update()
    views = {v.name: v for v in rd.inspect(scene, coll, resolution=LANDSCAPE)}
    assert not views[rows.name].inside
    assert views[cols.name].height_px < rd.MIN_SHAPE_PX
    assert c.name in views[r.name].overlaps
    assert not rd.problems([views[_text(coll, "label:R.name").name]], check_height=True)


def test_names_scale_with_their_face():
    _, coll = built("lora_single", "sphere")
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = LANDSCAPE
    cameramod.refit(scene.camera, scene)
    views = {v.text: v for v in rd.inspect(scene, coll, resolution=LANDSCAPE)}
    # the 128x128 result's name is larger on screen than the 128x4 factors'
    assert views["wQK"].height_px > 1.5 * max(views["wQK_A"].height_px,
                                             views["wQK_B"].height_px)
