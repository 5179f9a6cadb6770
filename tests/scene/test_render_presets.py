"""Tiny Cycles renders of real presets, checked on their pixels: each face shows its values'
colours where the camera sees that face (positive cells blue/cyan, negative red)."""
import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from mm_blender import api

RES = (240, 150)


def _render(name, tmp_path):
    spec = api.load_spec(name)
    api.build(spec)
    path = api.render_still(tmp_path / f"{name}.png", resolution=RES, samples=8)
    img = bpy.data.images.load(str(path))
    w, h = img.size
    px = np.array(img.pixels[:], dtype=np.float32).reshape(h, w, 4)
    return px, w, h


def _pixel_of(scene, point, w, h):
    co = world_to_camera_view(scene, scene.camera, Vector(point))
    return int(round(co.x * (w - 1))), int(round(co.y * (h - 1)))   # y up, like img.pixels


def _face_checks(name, obj_name, px, w, h, rows_step):
    """Sample cells at the middle of bands of equal sign; where the pixel is coloured, blue
    must win on positive cells, red on negative ones."""
    scene = bpy.context.scene
    obj = bpy.data.objects[f"{name}:{obj_name}"]
    rows, cols = obj["mm_rows"], obj["mm_cols"]
    values = np.empty(rows * cols, np.float32)
    obj.data.attributes["value"].data.foreach_get("value", values)
    pos = np.empty(rows * cols * 3, np.float32)
    obj.data.vertices.foreach_get("co", pos)
    values, pos = values.reshape(rows, cols), pos.reshape(rows, cols, 3)
    agree = total = 0
    for i in range(rows_step // 2, rows, rows_step):
        for j in range(cols_step := max(1, cols // 6), cols - 1, cols_step):
            x, y = _pixel_of(scene, obj.matrix_world @ Vector(pos[i, j]), w, h)
            if not (0 <= x < w and 0 <= y < h) or values[i, j] == 0:
                continue
            r, g, b = px[y, x, :3]
            if abs(b - r) < 0.03:   # a neutral pixel: the face's name or the page between dots
                continue
            total += 1
            agree += (b > r) if values[i, j] > 0 else (r > b)
    return agree, total


@pytest.mark.parametrize("name, faces", [
    # intro_cube: L and R are +-1 stripes in bands of 8; the result a checkerboard of 8x8
    ("intro_cube", [("L", 8), ("R", 8), ("L @ R", 8)]),
    # binary: 64x64 faces with bands of 8 rows or columns
    ("binary", [("A", 8), ("D", 8), ("A @ B @ (C @ D)", 8)]),
])
def test_faces_show_their_colours_in_place(name, faces, tmp_path):
    px, w, h = _render(name, tmp_path)
    assert px[..., :3].std() > 0.05                     # not a uniform image
    corner = px[:4, :4, :3].mean()
    assert corner < 0.05                                 # mm's black background
    for obj_name, step in faces:
        agree, total = _face_checks(name, obj_name, px, w, h, step)
        assert total >= 8, (obj_name, total)
        assert agree / total >= 0.8, (name, obj_name, agree, total)


def test_paper_look_is_light(tmp_path):
    spec = api.load_spec("intro_cube")
    api.build(spec, look="paper")
    # at the other checks' size: at 96x60 a round cell covers under a pixel of the page
    w, h = RES
    path = api.render_still(tmp_path / "paper.png", resolution=RES, samples=4)
    img = bpy.data.images.load(str(path))
    px = np.array(img.pixels[:], dtype=np.float32).reshape(h, w, 4)
    assert px[:4, :4, :3].mean() > 0.7                   # a light background for print
    for obj_name in ("L", "R", "L @ R"):                  # and each sign's colour in place
        agree, total = _face_checks("intro_cube", obj_name, px, w, h, 8)
        assert total >= 8 and agree / total >= 0.75, (obj_name, agree, total)
