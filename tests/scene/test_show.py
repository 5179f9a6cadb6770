"""mm_blender.show(): a preset, a TOML path or a Spec rendered to a Picture that Jupyter
displays through `_repr_png_` and that saves as the same PNG; tiny real Cycles renders."""
import struct

import bpy
import numpy as np
import pytest

import mm_blender
from mm_blender.errors import MMError

TINY = 'name = "tiny"\nexpr = "A @ B"\n[matrix.A]\nh = 3\nw = 2\n[matrix.B]\nh = 2\nw = 4\n'


def png_pixels(png: bytes, tmp_path) -> np.ndarray:
    """(h, w, 4) pixels in 0..1, top row first, of PNG bytes (read back through Blender)."""
    path = tmp_path / "read_back.png"
    path.write_bytes(png)
    img = bpy.data.images.load(str(path))
    try:
        w, h = img.size
        px = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(img)
        path.unlink()
    return px.reshape(h, w, 4)[::-1]


def test_show_renders_a_preset_to_png_bytes_of_the_requested_size(tmp_path):
    picture = mm_blender.show("intro_cube", resolution=(64, 40), samples=1)
    png = picture._repr_png_()
    assert isinstance(png, bytes) and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (64, 40)
    assert picture.size == (64, 40) and "64x40" in repr(picture)
    px = png_pixels(png, tmp_path)[..., :3]
    assert px.shape == (40, 64, 3)
    # the cube is in the picture: its middle differs from the dark background at the corners
    corners = np.concatenate([px[:3, :3], px[:3, -3:], px[-3:, :3], px[-3:, -3:]]).reshape(-1, 3)
    middle = px[10:30, 16:48].reshape(-1, 3)
    assert corners.mean() < 0.15
    assert np.abs(middle - corners.mean(axis=0)).max() > 0.25
    saved = picture.save(tmp_path / "cube.png")
    assert saved.read_bytes() == png
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.png"]   # nothing partial


def test_show_takes_a_toml_path_a_spec_and_a_text_resolution(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    from_path = mm_blender.show(path, resolution="32x20", samples=1)
    assert (from_path.size, from_path.name) == ((32, 20), "tiny")
    spec = mm_blender.load_spec(path)
    from_spec = mm_blender.show(spec, resolution=(20, 32), samples=1, look="paper")
    assert struct.unpack(">II", from_spec.png[16:24]) == (20, 32)
    assert png_pixels(from_spec.png, tmp_path)[:2, :2, :3].min() > 0.8   # paper: white


@pytest.mark.parametrize("kwargs,words", [
    ({"source": "no_such_preset"}, "unknown preset"),
    ({"source": "intro_cube", "resolution": "64"}, "WIDTHxHEIGHT"),
    ({"source": "intro_cube", "resolution": (2, 40)}, "between 4 and 16384"),
    ({"source": "intro_cube", "samples": 0}, "samples"),
    ({"source": "intro_cube", "look": "neon"}, "neon"),
])
def test_bad_input_is_one_error_and_the_open_file_stays(kwargs, words):
    keep = bpy.data.objects.new("keep_me", None)
    bpy.context.scene.collection.objects.link(keep)
    with pytest.raises(MMError, match=words):
        mm_blender.show(**kwargs)
    assert "keep_me" in bpy.data.objects


def test_picture_save_refuses_other_formats_and_missing_folders(tmp_path):
    picture = mm_blender.show("intro_cube", resolution=(16, 10), samples=1)
    with pytest.raises(MMError, match="PNG"):
        picture.save(tmp_path / "cube.jpg")
    with pytest.raises(MMError, match="does not exist"):
        picture.save(tmp_path / "absent" / "cube.png")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MMError, match="not a PNG"):
        mm_blender.Picture(b"GIF89a" + bytes(30))
