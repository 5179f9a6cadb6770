"""Dense faces keep their signs: cells are sized for their footprint on screen, the advice
names a resolution that resolves them, and the gallery's compact PNGs keep the picture."""
import bpy
import numpy as np
import pytest

from mm_blender.core.plan import MatrixPlan, ScenePlan
from mm_blender.render import gallery
from mm_blender.render.render import render_still
from mm_blender.scene import camera as cameramod
from mm_blender.scene import readability as rd
from mm_blender.scene.build import build

RED = (0.8, 0.02, 0.02, 1.0)
BLUE = (0.02, 0.1, 0.9, 1.0)


def banded_plan(n=64, band=4, size=0.55) -> ScenePlan:
    """One n x n face of the front view whose rows alternate sign in bands of `band` rows."""
    i, j = np.divmod(np.arange(n * n), n)
    positive = (i // band) % 2 == 0
    values = np.where(positive, 1.0, -1.0).astype(np.float32)
    colors = np.where(positive[:, None], RED, BLUE).astype(np.float32)
    positions = np.stack([j, np.zeros_like(j), -i], axis=1).astype(np.float32)
    face = MatrixPlan(key="M", name="M", role="leaf", rows=n, cols=n, path="l",
                      positions=positions, values=values, colors=colors,
                      sizes=np.full(n * n, size, np.float32), normal=np.array([0, -1, 0.0]),
                      row_axis=np.array([0, 0, -1.0]), col_axis=np.array([1, 0, 0.0]))
    return ScenePlan(name="banded", matrices=[face], cubes=[], triangles=[], lines=[],
                     labels=[], bounds_min=np.array([-0.5, -0.5, -n + 0.5], np.float32),
                     bounds_max=np.array([n - 0.5, 0.5, 0.5], np.float32))


def framed(resolution):
    coll = build(banded_plan(), view="front")
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = resolution
    cameramod.refit(scene.camera, scene)
    return scene, coll


def test_small_cells_fill_their_pitch_and_sharpen_the_filter():
    scene, coll = framed((200, 125))
    (fp,) = rd.footprints(scene, coll)
    assert fp.mixed and rd.SIGNS_PX < fp.pitch_px < rd.RESOLVED_PX
    assert rd.fit_cells(scene, coll) == []            # 1.8 px: signs still resolvable
    obj = bpy.data.objects[fp.name]
    scale = obj.modifiers["mm_cells"]["Socket_2"]
    assert scale * 0.55 == pytest.approx(rd.FILL, rel=1e-3)
    assert scene.cycles.filter_width == pytest.approx(rd.SHARP_FILTER_PX)
    # at a size where cells are resolved, the plan's sizes and the default filter stay
    scene.render.resolution_x, scene.render.resolution_y = 1280, 800
    cameramod.refit(scene.camera, scene)
    assert rd.fit_cells(scene, coll) == []
    assert obj.modifiers["mm_cells"]["Socket_2"] == 1.0
    assert scene.cycles.filter_width == 1.5


def test_unresolvable_faces_warn_with_a_resolution_that_resolves_them():
    scene, coll = framed((64, 40))
    (warning,) = rd.fit_cells(scene, coll)
    assert warning.startswith("M: cells are ") and "signs mix" in warning
    w, h = (int(v) for v in warning.split("render at ")[1].split(" ")[0].split("x"))
    assert w > 64 and h > 40 and abs(w / h - 64 / 40) < 0.05
    scene.render.resolution_x, scene.render.resolution_y = w, h
    cameramod.refit(scene.camera, scene)
    (fp,) = rd.footprints(scene, coll)
    assert fp.pitch_px >= rd.SIGNS_PX * 0.98
    assert rd.fit_cells(scene, coll) == []


def _signs(path):
    img = bpy.data.images.load(str(path))
    try:
        w, h = img.size
        px = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(img)
    rgb = px.reshape(h, w, 4)[::-1, :, :3]
    red = (rgb[..., 0] > rgb[..., 2] + 0.15).mean()
    blue = (rgb[..., 2] > rgb[..., 0] + 0.15).mean()
    return red, blue


@pytest.mark.slow
def test_fitted_cells_read_red_and_blue_at_a_small_size(tmp_path):
    """At about 1.8 px per cell, the face reads as red and blue bands once its cells fill
    their pitch: more of the picture is clearly red or blue than with the plan's sizes."""
    scene, coll = framed((200, 125))
    plain = render_still(tmp_path / "plain.png", resolution=(200, 125), samples=4,
                         device="cpu", denoise=False)
    rd.fit_cells(scene, coll)
    fitted = render_still(tmp_path / "fitted.png", resolution=(200, 125), samples=4,
                          device="cpu", denoise=False)
    r0, b0 = _signs(plain)
    r1, b1 = _signs(fitted)
    assert r1 > 0.15 and b1 > 0.15, (r1, b1)
    assert r1 + b1 > 1.2 * (r0 + b0), (r0, b0, r1, b1)


def test_compact_png_keeps_the_picture(tmp_path):
    """A 256-colour PNG of a picture of few colours is exact, and much smaller for many."""
    w, h = 64, 40
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (12, 3))
    idx = rng.integers(0, len(colours), (h, w))
    rgb = colours[idx].astype(np.float32) / 255
    img = bpy.data.images.new("pic", w, h)
    img.pixels.foreach_set(np.concatenate([rgb[::-1], np.ones((h, w, 1), np.float32)],
                                          axis=2).ravel())
    path = tmp_path / "pic.png"
    img.filepath_raw = str(path)
    img.file_format = "PNG"
    img.save()
    bpy.data.images.remove(img)
    gallery.compact_png(path)
    assert path.read_bytes()[25] == 3                 # colour type 3: a palette image
    back = bpy.data.images.load(str(path))
    px = np.empty(w * h * 4, np.float32)
    back.pixels.foreach_get(px)
    bpy.data.images.remove(back)
    got = np.round(px.reshape(h, w, 4)[::-1, :, :3] * 255)
    assert np.abs(got - colours[idx]).max() <= 1
