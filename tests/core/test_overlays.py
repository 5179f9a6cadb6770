"""The lens, spotlight and axes plans (core/overlays.py) and their spec checks, without Blender."""
from __future__ import annotations

import numpy as np
import pytest

from mm_blender.core import spec as specmod
from mm_blender.core.evaluate import evaluate
from mm_blender.core.scene_plan import make_plan
from mm_blender.errors import MMError

EXPR = "C = (A @ B) @ D"


def plan_of(**deco):
    spec = specmod.from_dict({"expr": EXPR, "deco": deco, "matrix": {
        "A": {"h": 5, "w": 4, "init": "gaussian"}, "B": {"h": 4, "w": 6, "init": "gaussian"},
        "D": {"h": 6, "w": 3, "init": "gaussian"}}})
    return spec, make_plan(spec, evaluate(spec))


def test_nothing_by_default():
    _, plan = plan_of()
    assert plan.lens is None and plan.spotlight is None and plan.axes is None


def test_lens_starts_over_the_root_result_cell():
    _, plan = plan_of(lens=True, lens_size=1.0, magnification=5, lens_decimals=3)
    root = next(m for m in plan.matrices if m.role == "result" and m.path == "")
    assert np.allclose(plan.lens.position, root.positions[(5 // 2) * 3 + 3 // 2])
    assert plan.lens.radius == pytest.approx(specmod.LENS_CELLS_PER_SIZE)
    assert plan.lens.text_size == pytest.approx(5 * specmod.LENS_TEXT_PER_MAGNIFICATION)
    assert plan.lens.decimals == 3
    _, plan = plan_of(lens=True, lens_row=4, lens_col=0)
    assert np.allclose(plan.lens.position, root.positions[4 * 3])


def test_spotlight_names_the_matmul_and_its_operands():
    _, plan = plan_of(spotlight_row=2, spotlight_col=5, spotlight_matmul="A @ B",
                      interior_spotlight=True, spotlight=3)
    s = plan.spotlight
    result = plan.matrix(s.result)
    assert result.matmul == "A @ B" and (s.left, s.right) == ("A", "B")
    assert np.allclose(s.position, result.positions[2 * 6 + 5])
    assert s.dim == pytest.approx(0.25) and s.interior
    assert len(s.table_colors) == len(s.table_sizes) > 0
    # products are coloured against the largest |L[i,k] * R[k,j]| when local
    _, root = plan_of(spotlight_row=0, spotlight_col=0)
    assert root.spotlight.result == next(m.key for m in root.matrices if m.path == "" and
                                         m.role == "result")


@pytest.mark.parametrize("deco, message", [
    ({"spotlight_row": 1}, "go together"),
    ({"spotlight_row": 5, "spotlight_col": 0}, "spotlight_row"),
    ({"spotlight_row": 0, "spotlight_col": 0, "spotlight_matmul": "nope"}, "not a matmul"),
    ({"lens_row": 9}, "lens_row"),
    ({"lens_size": 0}, "lens_size"),
    ({"lens_decimals": 9}, "lens_decimals"),
])
def test_bad_settings_are_named(deco, message):
    with pytest.raises(MMError, match=message):
        plan_of(**deco)


def test_axes_follow_the_root_cube():
    _, plan = plan_of(axes=True)
    a = plan.axes
    cube = next(c for c in plan.cubes if c.path == "")
    for d, step in zip(a.directions, (cube.di, cube.dj, cube.dk)):
        assert np.allclose(d, np.asarray(step) / np.linalg.norm(step))
    assert a.letters == ("i", "j", "k") and len(a.colors) == 3 and a.length >= 4
