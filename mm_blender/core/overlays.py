"""What the lens, the spotlight and the axes show, as plan data (no bpy): where the lens starts
and how big it is, which result cell is spotlit and what dims, where the i/j/k arrows go.
The scene (scene/lens.py) draws them with Geometry Nodes that read the cells' attributes."""
from __future__ import annotations

import numpy as np

from . import colour
from .sweep import product_range
from .plan import AxesPlan, CubePlan, LabelPlan, LensPlan, MatrixPlan, SpotlightPlan
from .spec import (LENS_CELLS_PER_SIZE, LENS_SPREAD_PER_MAGNIFICATION,
                   LENS_TEXT_PER_MAGNIFICATION, Spec)

# mm's axes in three.js's colours: x (our j) red, y (i) green, z (k) blue; sRGB
AXIS_RGB = {"i": (0.3, 0.9, 0.3), "j": (0.95, 0.3, 0.3), "k": (0.35, 0.5, 1.0)}


def _root_result(spec: Spec, matrices: list[MatrixPlan]) -> MatrixPlan:
    return next(m for m in matrices if m.role == "result" and m.path == "")


def _cell(m: MatrixPlan, row: int, col: int) -> np.ndarray:
    row = m.rows // 2 if row < 0 else row
    col = m.cols // 2 if col < 0 else col
    return np.asarray(m.positions[row * m.cols + col], np.float64)


def lens_plan(spec: Spec, matrices: list[MatrixPlan]) -> LensPlan | None:
    D = spec.deco
    if not D.lens:
        return None
    root = _root_result(spec, matrices)
    return LensPlan(position=_cell(root, D.lens_row, D.lens_col),
                    radius=float(D.lens_size * LENS_CELLS_PER_SIZE),
                    text_size=float(D.magnification * LENS_TEXT_PER_MAGNIFICATION),
                    decimals=int(D.lens_decimals),
                    spread=float(max(1.0, D.magnification * LENS_SPREAD_PER_MAGNIFICATION)))


TABLE_SIZE = 4096


def colour_table(viz, n: int = TABLE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(2n, 4) colours and (2n,) sizes of the build's colour rule for values -u^2 (first n)
    and +u^2 (last n), u = 0 .. 1, against the range 0 .. 1. Both rules depend on a value
    only through its sign and sqrt(v), v its magnitude within the range, so Geometry Nodes
    finds any value's colour at round(sqrt(v) * (n - 1)) (+ n if positive)."""
    u = np.linspace(0.0, 1.0, n)
    mag = np.maximum(u * u, 1e-30)           # u = 0 is the smallest non-zero value, drawn
    x = np.concatenate([-mag, mag])
    rng = colour.Range(0.0, 1.0)
    return colour.colors(x, rng, viz), colour.sizes(x, rng, viz)


def products_range(left: np.ndarray, right: np.ndarray, viz, gmax: float) -> colour.Range:
    """What products are coloured against (as the sweep's): mm gives each intermediate plane
    the matrix rule with its own values; ours are all of the matmul's products."""
    local = product_range(left, right)
    if viz.sensitivity == "global":
        return colour.Range(0.0, gmax)
    if viz.sensitivity == "semilocal":
        return colour.Range(0.0, float(np.sqrt(local * gmax)))
    return colour.Range(0.0, local)


def spotlight_plan(spec: Spec, matrices: list[MatrixPlan]) -> SpotlightPlan | None:
    D = spec.deco
    if D.spotlight_row < 0 or D.spotlight <= 0:
        return None
    name = D.spotlight_matmul or spec.tree.name
    result = next(m for m in matrices if m.role == "result" and m.matmul == name)
    by_key = {m.key: m for m in matrices}
    left, right = by_key[result.left], by_key[result.right]
    gmax = max((colour.finite_absmax(m.values) for m in matrices), default=0.0)
    rng = products_range(left.values.reshape(left.rows, left.cols),
                         right.values.reshape(right.rows, right.cols), spec.viz, gmax)
    colours, sizes = colour_table(spec.viz) if D.interior_spotlight else (None, None)
    return SpotlightPlan(result=result.key, left=result.left, right=result.right,
                         row=int(D.spotlight_row), col=int(D.spotlight_col),
                         position=_cell(result, D.spotlight_row, D.spotlight_col),
                         dim=float(1.0 / (1.0 + D.spotlight)), interior=bool(D.interior_spotlight),
                         products_absmin=float(rng.absmin), products_absmax=float(rng.absmax),
                         table_colors=colours, table_sizes=sizes)


def axis_labels(plan: AxesPlan | None) -> list[LabelPlan]:
    """The axes' letters beyond their arrow heads: labels of the plan, so the scene places
    them with every other text (clear of shape labels and names)."""
    if plan is None:
        return []
    head = plan.length * 0.12
    return [LabelPlan(f"axis.{letter}", letter, plan.origin + d * (plan.length + 1.2 * head),
                      head * 1.2, "axis")
            for letter, d in zip(plan.letters, plan.directions)]


def axes_plan(spec: Spec, cubes: list[CubePlan]) -> AxesPlan | None:
    """Arrows from the root cube's (0, 0, 0) product along i, j and k, a third of the
    cube's smallest side long (at least 4 cells) so they point without hiding it."""
    if not spec.deco.axes:
        return None
    root = next(c for c in cubes if c.path == "")
    dirs = np.stack([np.asarray(v, np.float64) for v in (root.di, root.dj, root.dk)])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    length = max(4.0, float(min(root.rows, root.cols, root.depth)) / 3 + 2 * root.gap)
    origin = np.asarray(root.base, np.float64) - root.gap * dirs.sum(axis=0)
    rgba = tuple((*map(float, colour.srgb_to_linear(np.array(AXIS_RGB[a]))), 1.0) for a in "ijk")
    return AxesPlan(origin=origin, directions=dirs, length=length, colors=rgba)
