"""Scene tests run against the bpy wheel in-process. Blender's user folders and caches are
pointed into a temporary folder before `import bpy`, so runs stay isolated.

Also here: small hand-made ScenePlans (no dependency on layout or colour), handed to tests
as the factory fixtures `matmul_plan` and `two_colour_plan`."""
import os
import tempfile

_ROOT = tempfile.mkdtemp(prefix="mm_blender_scene_tests_")
for _var, _sub in (("BLENDER_USER_RESOURCES", "resources"),
                   ("BLENDER_USER_EXTENSIONS", "extensions"),
                   ("XDG_CACHE_HOME", "cache")):
    os.environ.setdefault(_var, os.path.join(_ROOT, _sub))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mm_blender.core.plan import (LabelPlan, LinePlan, MatrixPlan, ScenePlan,  # noqa: E402
                                  TrianglePlan)


@pytest.fixture(autouse=True)
def empty_file():
    """Every test starts from an empty factory file."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


RED = (0.8, 0.02, 0.02, 1.0)
BLUE = (0.02, 0.1, 0.9, 1.0)


def face_matrix(key, name, rows, cols, *, origin, col_axis, row_axis, values=None,
                color=None, role="leaf", size=0.8, **extra) -> MatrixPlan:
    """A rows x cols matrix laid on a face: cell (i, j) at origin + j*col_axis + i*row_axis."""
    col_axis = np.asarray(col_axis, np.float32)
    row_axis = np.asarray(row_axis, np.float32)
    i, j = np.divmod(np.arange(rows * cols), cols)
    positions = (np.asarray(origin, np.float32) + j[:, None] * col_axis
                 + i[:, None] * row_axis).astype(np.float32)
    if values is None:
        values = np.linspace(-1, 1, rows * cols, dtype=np.float32)
    values = np.asarray(values, np.float32).reshape(-1)
    if color is None:
        colors = np.where((values >= 0)[:, None], np.float32(BLUE), np.float32(RED))
    else:
        colors = np.broadcast_to(np.asarray(color, np.float32), (rows * cols, 4))
    colors = np.ascontiguousarray(colors, dtype=np.float32)
    sizes = np.where(values == 0, 0.0, size).astype(np.float32)
    normal = np.cross(col_axis, row_axis)
    return MatrixPlan(key=key, name=name, role=role, rows=rows, cols=cols,
                      path=extra.pop("path", ""),
                      positions=positions, values=values, colors=colors, sizes=sizes,
                      normal=normal, row_axis=row_axis, col_axis=col_axis, **extra)


def make_matmul_plan(name="synthetic", i=6, k=4, j=5, seed=0, zeros=True) -> ScenePlan:
    """One matmul L @ R laid out like mm: result on the front face (Y = -1), L on the left
    face (X = -1), R on top (Z = 1); with an outline box, row guides, flow guides, labels."""
    rng = np.random.default_rng(seed)
    lv = rng.normal(size=(i, k)).astype(np.float32)
    rv = rng.normal(size=(k, j)).astype(np.float32)
    if zeros:
        lv[0, 0] = 0.0
        rv[1, 2] = 0.0
    res = (lv @ rv).astype(np.float32)
    res[0, 1] = np.nan
    down = (0, 0, -1)
    left = face_matrix("L", "L", i, k, origin=(-1, 0, -0.0), col_axis=(0, 1, 0), row_axis=down,
                       values=lv)
    right = face_matrix("R", "R", k, j, origin=(0, 0, 1), col_axis=(1, 0, 0), row_axis=(0, 1, 0),
                        values=rv)
    result = face_matrix("L@R", "L @ R", i, j, origin=(0, -1, 0), col_axis=(1, 0, 0),
                         row_axis=down, values=res, role="result", left="L", right="R",
                         epilogue="none", matmul="L @ R")
    result.colors[~np.isfinite(res.ravel())] = (1, 1, 1, 1)
    bmin = np.array([-1.5, -1.5, -i + 0.5], np.float32)
    bmax = np.array([j + 0.5, k + 0.5, 1.5], np.float32)
    box = np.array([[x, y, z] for x in (bmin[0], bmax[0]) for y in (bmin[1], bmax[1])
                    for z in (bmin[2], bmax[2])], np.float32)
    edges = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
    outline = LinePlan(key="outlines", segments=box[np.array(edges)], color=(0.25, 0.25, 0.25, 1),
                       thickness=0.08)
    tri = TrianglePlan(key="flow", vertices=np.array([[[0, 0, 0], [1, 0, 0], [0, 0, -1]],
                                                      [[0, 0, 0], [0, 1, 0], [0, 0, -1]]],
                                                     np.float32),
                       colors=np.array([[150 / 255, 200 / 255, 1, 0.5],
                                        [1, 150 / 255, 150 / 255, 0.5]], np.float32))
    rows = np.array([[[-1, 0, -r], [-1, k - 1, -r]] for r in range(i)], np.float32)
    guides = LinePlan(key="row_guides", segments=rows, color=(0.5, 0.5, 0.5, 1.0))
    labels = [LabelPlan(key="L", text="L", position=np.array([-1.5, 1, -2]), size=1.0, kind="name"),
              LabelPlan(key="I", text=f"I = {i}", position=np.array([-1.5, -1, -2]), size=0.6,
                        kind="shape")]
    return ScenePlan(name=name, matrices=[left, right, result], cubes=[], triangles=[tri],
                     lines=[outline, guides], labels=labels, bounds_min=bmin, bounds_max=bmax,
                     title="L @ R")


def make_two_colour_plan(name="two_colour", n=12) -> ScenePlan:
    """An all-red matrix on the left and an all-blue one on the right, facing the front."""
    ones = np.ones(n * n, np.float32)
    red = face_matrix("red", "red", n, n, origin=(0, 0, 0), col_axis=(1, 0, 0),
                      row_axis=(0, 0, -1), values=ones, color=RED, size=0.9)
    blue = face_matrix("blue", "blue", n, n, origin=(n + 4, 0, 0), col_axis=(1, 0, 0),
                       row_axis=(0, 0, -1), values=ones, color=BLUE, size=0.9)
    bmin = np.array([-0.5, -0.5, -n + 0.5], np.float32)
    bmax = np.array([2 * n + 3.5, 0.5, 0.5], np.float32)
    return ScenePlan(name=name, matrices=[red, blue], cubes=[], triangles=[], lines=[],
                     labels=[], bounds_min=bmin, bounds_max=bmax)


@pytest.fixture
def matmul_plan():
    return make_matmul_plan


@pytest.fixture
def two_colour_plan():
    return make_two_colour_plan


def check_products_in_blender(objects) -> int:
    """Every result object among `objects` holds its left object's values times its right
    one's, computed here with numpy from what Blender stores (row-major, cell (i, j) at point
    i * cols + j), then its epilogue. Returns how many products were checked; the rope
    epilogues (which need the model's positions) are skipped."""
    from mm_blender.core.evaluate import apply_epilogue

    def matrix(obj):
        values = np.empty(len(obj.data.vertices), np.float32)
        obj.data.attributes["value"].data.foreach_get("value", values)
        return values.reshape(obj["mm_rows"], obj["mm_cols"]).astype(np.float64)

    checked = 0
    for obj in objects:
        if obj.get("mm_role") != "result" or "rope" in obj.get("mm_epilogue", ""):
            continue
        left, right = matrix(bpy.data.objects[obj["mm_left"]]), matrix(bpy.data.objects[obj["mm_right"]])
        assert left.shape[1] == right.shape[0], obj.name
        with np.errstate(all="ignore"):
            expected = apply_epilogue(left @ right, obj["mm_epilogue"], left.shape[1])
        got = matrix(obj)
        assert got.shape == expected.shape, obj.name
        scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(expected), expected, 0)))))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale, equal_nan=True,
                                   err_msg=obj.name)
        checked += 1
    return checked


@pytest.fixture
def products_in_blender():
    return check_products_in_blender
