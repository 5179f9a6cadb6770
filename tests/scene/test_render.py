"""render_still / render_animation: real (tiny) renders, checked by their pixels."""
import os

import bpy
import numpy as np
import pytest

from mm_blender import outputs

from mm_blender.errors import MMError
from mm_blender.render import render as rendermod
from mm_blender.render.render import render_animation, render_still
from mm_blender.scene.build import build


def pixels(path) -> np.ndarray:
    """(h, w, 4) float pixels, top row first."""
    img = bpy.data.images.load(str(path))
    try:
        w, h = img.size
        px = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(img)
    return px.reshape(h, w, 4)[::-1]


@pytest.mark.slow
@pytest.mark.parametrize("look,shape", [("dark", "cube"), ("paper", "cube"), ("dark", "sphere"),
                                        ("paper", "sphere")])
def test_cycles_render_shows_red_left_and_blue_right(tmp_path, look, shape, two_colour_plan):
    build(two_colour_plan(), look=look, view="front", shape=shape)
    out = render_still(tmp_path / "two.png", resolution=(160, 90), samples=4, device="cpu",
                       denoise=False)
    assert sorted(os.listdir(tmp_path)) == ["two.png"]          # nothing partial left
    px = pixels(out)[..., :3]
    assert px.shape == (90, 160, 3)
    assert px.std() > 0.1                                       # not uniform
    left, right = px[20:70, 10:70], px[20:70, 90:150]
    lr, lg, lb = left.reshape(-1, 3).mean(axis=0)
    rr, rg, rb = right.reshape(-1, 3).mean(axis=0)
    assert lr > lb + 0.2 and lr > lg + 0.2, (look, lr, lg, lb)  # reddish
    assert rb > rr + 0.2, (look, rr, rg, rb)                    # bluish
    corner = px[:4, :4].mean()
    assert corner < 0.05 if look == "dark" else corner > 0.95   # black or white background


def test_denoised_render_is_written(tmp_path, two_colour_plan):
    build(two_colour_plan(n=4), view="front")
    out = render_still(tmp_path / "d.png", resolution=(48, 27), samples=2, device="auto",
                       denoise=True)
    assert out.is_file() and pixels(out).std() > 0.05
    assert bpy.context.scene.render.engine == "CYCLES"


def projected(points, w, h) -> np.ndarray:
    """(x, y) pixel of each world point in the scene camera's view, top row first."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    scene = bpy.context.scene
    out = []
    for p in points:
        co = world_to_camera_view(scene, scene.camera, Vector(p))
        out.append((round(co.x * (w - 1)), (h - 1) - round(co.y * (h - 1))))
    return np.array(out)


def test_workbench_render(tmp_path, two_colour_plan):
    plan = two_colour_plan(n=4)
    build(plan, view="front")
    out = render_still(tmp_path / "w.jpg", resolution=(64, 36), engine="workbench")
    assert bpy.context.scene.render.engine == "BLENDER_WORKBENCH"
    px = pixels(out)[..., :3]
    assert px.shape == (36, 64, 3)
    # Workbench draws the cells in their material's solid colour: lit where every cell
    # projects, the black background in the gap between the two matrices and at the corner
    for m in plan.matrices:
        for x, y in projected(m.positions, 64, 36):
            assert px[y, x].mean() > 0.35, (m.name, x, y, px[y, x])   # ~0.55 lit, ~0.2 black
    gap = (plan.matrices[0].positions[:, 0].max() + plan.matrices[1].positions[:, 0].min()) / 2
    (x, y), = projected([(gap, 0.0, plan.matrices[0].positions[:, 2].mean())], 64, 36)
    assert px[y, x].mean() < 0.05 and px[:3, :3].mean() < 0.05


def test_unwritable_output_is_an_mm_error_before_any_work(tmp_path, two_colour_plan):
    build(two_colour_plan(n=4))
    bpy.context.scene.render.engine = "BLENDER_WORKBENCH"
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(MMError, match="cannot write"):
        render_still(blocker / "out.png", resolution=(64, 36))
    assert bpy.context.scene.render.engine == "BLENDER_WORKBENCH"   # nothing configured
    with pytest.raises(MMError, match="cannot write"):
        render_animation(blocker / "frames", frames=(1, 2))


def test_bad_arguments_are_mm_errors(tmp_path, two_colour_plan):
    with pytest.raises(MMError, match="camera"):
        render_still(tmp_path / "x.png")
    build(two_colour_plan(n=4))
    with pytest.raises(MMError, match="image type"):
        render_still(tmp_path / "x.gif")
    with pytest.raises(MMError, match="engine"):
        render_still(tmp_path / "x.png", engine="povray")
    with pytest.raises(MMError, match="device"):
        render_still(tmp_path / "x.png", device="tpu")
    with pytest.raises(MMError, match="even"):
        render_animation(tmp_path / "x.mp4", video=True, resolution=(65, 36))
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch, two_colour_plan):
    build(two_colour_plan(n=4))

    def refuse(*_):
        raise OSError("disk full")

    (tmp_path / "out.png").write_bytes(b"old")
    monkeypatch.setattr(outputs.os, "replace", refuse)
    with pytest.raises(MMError, match="cannot write image .*disk full.*old file is unchanged"):
        render_still(tmp_path / "out.png", resolution=(32, 18), engine="workbench")
    assert os.listdir(tmp_path) == ["out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"old"


def test_device_auto_falls_back_to_cpu():
    scene = bpy.context.scene
    chosen = rendermod.select_device(scene, "auto")
    assert chosen in ("CPU",) + rendermod.GPU_BACKENDS
    if chosen == "CPU":
        assert scene.cycles.device == "CPU"
        with pytest.raises(MMError, match="gpu"):
            rendermod.select_device(scene, "gpu")


def test_engine_names():
    assert rendermod.engine_id("cycles") == "CYCLES"
    assert rendermod.engine_id("workbench") == "BLENDER_WORKBENCH"
    expected = "BLENDER_EEVEE" if bpy.app.version >= (5, 0, 0) else "BLENDER_EEVEE_NEXT"
    assert rendermod.engine_id("eevee") == expected


def test_png_sequence(tmp_path, two_colour_plan):
    build(two_colour_plan(n=4))
    seen = []
    out = render_animation(tmp_path / "frames", frames=(1, 3), resolution=(32, 18),
                           engine="workbench", progress=lambda f, m: seen.append(f))
    assert sorted(os.listdir(out)) == ["frame_0001.png", "frame_0002.png", "frame_0003.png"]
    assert sorted(os.listdir(tmp_path)) == ["frames"]
    assert seen[-1] == 1.0


def test_video(tmp_path, two_colour_plan):
    build(two_colour_plan(n=4))
    out = render_animation(tmp_path / "clip.mp4", frames=(1, 3), video=True,
                           resolution=(32, 18), engine="workbench", fps=12)
    assert out.is_file() and out.stat().st_size > 0
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]
    with open(out, "rb") as f:
        assert b"ftyp" in f.read(64)                         # an MP4 container
    clip = bpy.data.movieclips.load(str(out))                # decoded by Blender's FFmpeg
    assert (tuple(clip.size), clip.frame_duration) == ((32, 18), 3)
    bpy.data.movieclips.remove(clip)
    # a still after a video: back to an image format
    still = render_still(tmp_path / "after.png", resolution=(32, 18), engine="workbench")
    assert pixels(still).shape == (18, 32, 4)
