"""A chunk of a sweep rendered with Cycles (tiny), checked by its pixels: frames differ where
the product plane moves and stay the same where nothing changes."""
import os

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from mm_blender import api
from mm_blender.core import spec as specmod
from mm_blender.render.render import render_animation
from mm_blender.scene.animate import SWEEP_MODIFIER

from .test_render import pixels

W, H = 120, 80
SWEEP = dict(name="chunk", expr="L @ R", anim=dict(alg="vmprod", frames_per_step=1),
             matrix=dict(L=dict(h=8, w=6, init="gaussian"), R=dict(h=6, w=8, init="gaussian")),
             deco=dict(legends=0, shape_labels=False), look=dict(view="iso"))


def _cells(obj, scene):
    """World positions and radii of obj's drawn cells (a point cloud) at the current frame."""
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = obj.evaluated_get(dg).evaluated_geometry()   # keep the GeometrySet alive
    cloud = geometry.pointcloud
    if cloud is None or obj.hide_render:
        return np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
    n = len(cloud.points)
    co, radius = np.empty(n * 3, np.float32), np.empty(n, np.float32)
    cloud.attributes["position"].data.foreach_get("vector", co)
    cloud.attributes["radius"].data.foreach_get("value", radius)
    return co.reshape(n, 3), radius


def _footprint(scene, points, radii, margin_px=0.0) -> np.ndarray:
    """(H, W) bool: pixels within each cell's projected radius (+ margin), top row first."""
    cam = scene.camera
    mask = np.zeros((H, W), bool)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    for p, r in zip(points, radii):          # a few dozen cells: a loop is fine in a test
        c = world_to_camera_view(scene, cam, _vec(p))
        e = world_to_camera_view(scene, cam, _vec(p + np.asarray(cam.matrix_world.col[0][:3]) * r))
        cx, cy = c.x * W, (1 - c.y) * H
        rad = np.hypot((e.x - c.x) * W, (e.y - c.y) * H) + margin_px
        mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= rad ** 2
    return mask


def _vec(p) -> Vector:
    return Vector(tuple(float(v) for v in p))


def test_three_frame_chunk_changes_only_where_the_sweep_moves(tmp_path):
    spec = specmod.from_dict(SWEEP)
    api.build(spec)
    scene = bpy.context.scene
    moving = [o for o in scene.objects if o.modifiers.get(SWEEP_MODIFIER) is not None]
    products = next(o for o in moving if o.get("mm_role") == "products")
    first = scene.frame_start + 2                 # the plane is at rows 2, 3, 4 of i
    frames = list(range(first, first + 3))

    timed, said = [], []
    out = render_animation(tmp_path / "frames", frames=(frames[0], frames[-1]),
                           resolution=(W, H), samples=4, device="cpu", denoise=False,
                           on_frame=timed.append, progress=lambda f, m: said.append((f, m)))
    names = sorted(os.listdir(out))
    assert names == [f"frame_{f:04d}.png" for f in frames]
    assert [t.frame for t in timed] == frames and all(t.total_s > 0 for t in timed)
    assert all(t.sampling_s > 0 and t.scene_s > 0 for t in timed)     # Cycles reported both
    progress = [m for f, m in said if m.startswith("frame ")]
    assert [m.split()[1] for m in progress] == ["1/3", "2/3", "3/3"]
    assert all(" left" in m and "sampling" in m for m in progress) and said[-1][0] == 1.0
    assert not bpy.context.scene.render.use_persistent_data          # restored after
    images = [pixels(out / n)[..., :3] for n in names]

    # where each frame draws the products, and where anything that moves draws at all
    plane, anything = [], np.zeros((H, W), bool)
    for f in frames:
        scene.frame_set(f)
        pos, rad = _cells(products, scene)
        assert len(pos) > 0, f
        plane.append((_footprint(scene, pos, rad), pos))
        for o in moving:
            anything |= _footprint(scene, *_cells(o, scene), margin_px=2.0)
    scene.frame_set(frames[0])

    for n in range(2):
        a, b = images[n], images[n + 1]
        (mask_a, pos_a), (mask_b, pos_b) = plane[n], plane[n + 1]
        assert not np.allclose(pos_a.mean(0), pos_b.mean(0))      # the plane moved
        moved = mask_a ^ mask_b
        assert moved.sum() >= 20, moved.sum()
        diff = np.abs(a - b).max(axis=-1)
        assert diff[moved].mean() > 0.05, (n, diff[moved].mean())
        # nothing changes elsewhere: same seed, same samples, so the same pixels but for the
        # odd light path that meets a moving cell (Blender's own image test: at most 1% of
        # pixels off by more than 0.016)
        still = ~anything
        assert still.sum() > 0.5 * W * H
        assert (diff[still] > 0.016).mean() <= 0.01, (n, (diff[still] > 0.016).mean())
        assert diff[still].mean() < 0.002, (n, diff[still].mean())
        assert a[still].std() > 0.01 or a[still].max() > 0.05     # and it shows something


def test_static_cells_share_their_geometry_only_while_a_chunk_renders(tmp_path, monkeypatch):
    """The operands' cells get a vanishing second instance for the render (so Cycles keeps
    their BVH between frames); the frames are the same as without it, and nothing of it stays
    in the scene."""
    from contextlib import nullcontext

    from mm_blender.render import render as rendermod
    from mm_blender.render import shared_bvh

    api.build(specmod.from_dict(SWEEP))
    scene = bpy.context.scene
    static = shared_bvh.static_cells(scene)
    assert sorted(o.get("mm_key") for o in static) == ["L", "R"]
    modifiers_before = {o.name: [m.name for m in o.modifiers] for o in scene.objects}
    with shared_bvh.static_cells_shared(scene) as shared:
        assert shared == static
        assert all(o.modifiers[-1].name == shared_bvh.MODIFIER
                   and not o.modifiers[-1].show_viewport for o in shared)

    frames = (scene.frame_start + 2, scene.frame_start + 3)
    seen = []

    def look(*_):
        seen.append(sorted(o.get("mm_key") for o in scene.objects
                           if o.modifiers.get(shared_bvh.MODIFIER)))

    kw = dict(frames=frames, resolution=(64, 40), samples=2, device="cpu", denoise=False)
    bpy.app.handlers.render_pre.append(look)
    try:
        shared_out = render_animation(tmp_path / "shared", **kw)
    finally:
        bpy.app.handlers.render_pre.remove(look)
    assert seen and all(s == ["L", "R"] for s in seen)            # in place while rendering
    monkeypatch.setattr(rendermod, "static_cells_shared", lambda scene: nullcontext())
    plain_out = render_animation(tmp_path / "plain", **kw)
    for name in sorted(os.listdir(shared_out)):
        a, b = pixels(shared_out / name), pixels(plain_out / name)
        diff = np.abs(a - b)[..., :3].max(axis=-1)
        assert (diff > 0.016).mean() <= 0.01, name
    assert {o.name: [m.name for m in o.modifiers] for o in scene.objects} == modifiers_before
    assert shared_bvh.GROUP not in bpy.data.node_groups
