"""The scene plan: positions from the layout, unique keys, operands of results, colours and
sizes from the colour module, guides/outlines/labels, bounds, and a 1.1M-cell plan."""

from pathlib import Path

import numpy as np
import pytest

from mm_blender.core import colour
from mm_blender.core import expr as E
from mm_blender.core.evaluate import evaluate
from mm_blender.core.layout import compute_layout
from mm_blender.core.scene_plan import (LEFT_GUIDE_RGB, RIGHT_GUIDE_RGB, make_plan,
                                        object_keys, plan_from_spec)
from mm_blender.core.spec import from_dict, load_toml

PRESETS = Path(__file__).resolve().parents[2] / "presets"


def small_spec(**extra):
    data = {"expr": "out = (AB = A @ B) @ (C @ A_2)", "seed": 1,
            "layout": {"gap": 2}, "blocks": {"i": 2, "k": 2},
            "matrix": {"A": {"h": 5, "w": 3, "init": "gaussian"},
                       "B": {"h": 3, "w": 4, "init": "uniform"},
                       "C": {"h": 4, "w": 5, "init": "row major"},
                       "A_2": {"h": 5, "w": 6, "init": "col major"}},
            "matmul": {"AB": {"epilogue": "relu", "k_blocks": 3},
                       "C @ A_2": {"epilogue": "tanh"}}}
    data.update(extra)
    return from_dict(data)


def repeated_spec():
    """`input` appears twice, as in attention."""
    return from_dict({"expr": "(Q = input @ wQ) @ (K_t = wK @ input_t) @ (V = input @ wV)",
                      "layout": {"gap": 1},
                      "matrix": {"input": {"h": 6, "w": 4, "init": "gaussian"},
                                 "wQ": {"h": 4, "w": 3}, "wK": {"h": 3, "w": 4},
                                 "input_t": {"h": 4, "w": 6, "init": "transpose",
                                             "source": "input"},
                                 "wV": {"h": 4, "w": 3}}})


@pytest.fixture(scope="module")
def small():
    spec = small_spec()
    values = evaluate(spec)
    layout = compute_layout(spec)
    return spec, values, layout, make_plan(spec, values, layout)


def test_one_matrix_plan_per_drawn_matrix(small):
    spec, values, layout, plan = small
    assert len(plan.matrices) == len(list(E.walk(spec.tree))) == 7
    assert len(plan.cubes) == 3
    assert plan.cell_count() == spec.cell_count()
    assert plan.name == spec.name and plan.title == spec.expr


def test_positions_equal_layout_positions(small):
    spec, values, layout, plan = small
    for m, mat in zip(plan.matrices, layout.mats):
        assert (m.path, m.role) == (mat.path, mat.role)
        assert m.positions.dtype == np.float32 and m.positions.shape == (m.rows * m.cols, 3)
        np.testing.assert_array_equal(m.positions, layout.positions(mat))
        np.testing.assert_allclose(m.positions, layout.to_blender(mat.mm_positions()), atol=1e-4)


def test_axes_follow_the_cells(small):
    _, _, _, plan = small
    for m in plan.matrices:
        pos = m.positions.reshape(m.rows, m.cols, 3).astype(np.float64)
        for axis in (m.normal, m.row_axis, m.col_axis):
            assert np.linalg.norm(axis) == pytest.approx(1)
        if m.rows > 1:
            step = pos[1, 0] - pos[0, 0]
            np.testing.assert_allclose(step / np.linalg.norm(step), m.row_axis, atol=1e-6)
        if m.cols > 1:
            step = pos[0, 1] - pos[0, 0]
            np.testing.assert_allclose(step / np.linalg.norm(step), m.col_axis, atol=1e-6)
        assert abs(np.dot(m.normal, m.row_axis)) < 1e-9 and abs(np.dot(m.normal, m.col_axis)) < 1e-9
        # every cell lies in the face's plane
        assert np.ptp(m.positions @ m.normal) < 1e-3


def test_keys_unique_and_results_name_their_operands(small):
    spec, _, layout, plan = small
    keys = [m.key for m in plan.matrices]
    assert len(set(keys)) == len(keys)
    by_path = {(m.path, m.role): m for m in plan.matrices}
    for node in E.matmuls(spec.tree):
        res = by_path[(node.path, "result")]
        left = by_path[(node.left.path, "result" if isinstance(node.left, E.MatMul) else "leaf")]
        right = by_path[(node.right.path,
                         "result" if isinstance(node.right, E.MatMul) else "leaf")]
        assert (res.left, res.right) == (left.key, right.key)
        assert res.epilogue == spec.matmul(node).epilogue and res.matmul == node.name
        assert res.name == node.name and res.role == "result"
    assert by_path[("l", "result")].epilogue == "relu"
    assert by_path[("r", "result")].epilogue == "tanh"
    assert by_path[("", "result")].left == "AB" and by_path[("", "result")].right == "C @ A_2"
    for m in plan.matrices:
        if m.role == "leaf":
            assert m.left == "" and m.right == "" and m.epilogue == ""


def test_repeated_leaf_gets_a_distinct_key():
    spec = repeated_spec()
    plan = plan_from_spec(spec)
    inputs = [m for m in plan.matrices if m.name == "input"]
    assert len(inputs) == 2
    assert {m.key for m in inputs} == {"input", "input (2)"}
    assert len({m.key for m in plan.matrices}) == len(plan.matrices)
    # same data in both, different places
    np.testing.assert_array_equal(inputs[0].values, inputs[1].values)
    assert not np.allclose(inputs[0].positions, inputs[1].positions)
    # each result refers to the occurrence it multiplies
    q = next(m for m in plan.matrices if m.name == "Q")
    v = next(m for m in plan.matrices if m.name == "V")
    assert {q.left, v.left} == {"input", "input (2)"}
    assert plan.matrix(q.left).path == "lll" and plan.matrix(v.left).path == "rl"
    keys = object_keys(compute_layout(spec))
    assert sorted(keys.values()) == sorted(m.key for m in plan.matrices)


def test_values_colours_and_sizes_from_the_colour_module(small):
    spec, values, layout, plan = small
    gmax = max(colour.finite_absmax(a) for a in values.all_arrays())
    for m, mat in zip(plan.matrices, layout.mats):
        want = values.of(mat.node).ravel()
        np.testing.assert_array_equal(m.values, want)
        rng = colour.value_range(want, spec.viz.sensitivity, gmax)
        np.testing.assert_array_equal(m.colors, colour.colors(want, rng, spec.viz))
        np.testing.assert_array_equal(m.sizes, colour.sizes(want, rng, spec.viz))
        assert m.colors.shape == (m.rows * m.cols, 4) and m.sizes.shape == (m.rows * m.cols,)


@pytest.mark.parametrize("sensitivity", ["global", "local", "semilocal", "superlocal"])
def test_sensitivity_reaches_the_plan(sensitivity):
    spec = small_spec(viz={"sensitivity": sensitivity})
    values = evaluate(spec)
    plan = make_plan(spec, values)
    gmax = max(colour.finite_absmax(a) for a in values.all_arrays())
    for m in plan.matrices:
        rng = colour.value_range(m.values, sensitivity, gmax)
        np.testing.assert_array_equal(m.sizes, colour.sizes(m.values, rng, spec.viz))
    if sensitivity == "local":     # every matrix's largest cell has the full size
        edge = colour.cell_edge(spec.viz)
        for m in plan.matrices:
            assert m.sizes.max() == pytest.approx(edge)


def test_cube_plans_agree_with_the_layout(small):
    spec, _, layout, plan = small
    for cp, cube in zip(plan.cubes, layout.cubes):
        assert cp.path == cube.path and cp.key == plan.matrix(cp.result).key
        res = plan.matrix(cp.result)
        assert (res.path, res.role) == (cube.path, "result")
        assert (cp.rows, cp.depth, cp.cols) == (cube.rows, cube.depth, cube.cols)
        I, J, K = np.meshgrid(np.arange(cube.rows), np.arange(cube.cols),
                              np.arange(cube.depth), indexing="ij")
        np.testing.assert_allclose(cp.interior_point(I, J, K), layout.interior(cube, I, J, K),
                                   atol=1e-4)
        # the result cell (i, j) is on the line of the products (i, j, k) along the depth axis
        P = cp.interior_point(I, J, K).astype(np.float64)
        rpos = res.positions.reshape(cube.rows, cube.cols, 3).astype(np.float64)
        d = rpos[:, :, None, :] - P
        perp = d - (d @ cp.axes[2])[..., None] * cp.axes[2]
        assert np.abs(perp).max() < 1e-3
        nb = [len(cp.ranges_j), len(cp.ranges_i), len(cp.ranges_k)]
        assert nb == [min(cube.blocks[1], cube.cols), min(cube.blocks[0], cube.rows),
                      min(cube.blocks[2], cube.depth)]
        assert cp.placement[0] == cube.placement.polarity


def test_flow_guides(small):
    spec, _, layout, plan = small
    assert len(plan.triangles) == 1
    tri = plan.triangles[0]
    assert tri.vertices.shape == (2 * len(plan.cubes), 3, 3)
    alpha = 0.5 + spec.deco.flow_guides / 2
    left = [*(colour.srgb_to_linear(np.array(LEFT_GUIDE_RGB))), alpha]
    right = [*(colour.srgb_to_linear(np.array(RIGHT_GUIDE_RGB))), alpha]
    np.testing.assert_allclose(tri.colors[0::2], np.broadcast_to(left, (3, 4)), atol=1e-6)
    np.testing.assert_allclose(tri.colors[1::2], np.broadcast_to(right, (3, 4)), atol=1e-6)
    assert LEFT_GUIDE_RGB == pytest.approx((150 / 255, 200 / 255, 1.0))
    assert RIGHT_GUIDE_RGB == pytest.approx((1.0, 150 / 255, 150 / 255))
    # each pair of triangles is inside its cube and shares the cube's centre
    for n, cp in enumerate(plan.cubes):
        centre = cp.origin + (cp.extent / 2) @ cp.axes
        for t in tri.vertices[2 * n: 2 * n + 2]:
            local = (t - cp.origin) @ cp.axes.T
            assert (local >= -1e-4).all() and (local <= cp.extent + 1e-4).all()
            assert np.min(np.linalg.norm(t - centre, axis=1)) < 1e-3
    off = small_spec(deco={"flow_guides": 0.0})
    assert plan_from_spec(off).triangles == []


def test_outlines_one_box_per_cube(small):
    """Partitioned cubes get one box, not one per block (the gaps show the partition)."""
    spec, _, layout, plan = small
    outlines = next(l for l in plan.lines if l.key == "outlines")
    assert outlines.segments.shape == (12 * len(plan.cubes), 2, 3)
    lengths = np.linalg.norm(outlines.segments[:, 1] - outlines.segments[:, 0], axis=1)
    assert (lengths > 0).all()
    for n, cp in enumerate(plan.cubes):
        box = outlines.segments[12 * n: 12 * n + 12]
        local = (box.reshape(-1, 3) - cp.origin) @ cp.axes.T
        # the box wraps the cube's cells: half a cell beyond the first and last block
        lo = [cp.ranges_j.min(), cp.ranges_i.min(), cp.ranges_k.min()]
        hi = [cp.ranges_j.max(), cp.ranges_i.max(), cp.ranges_k.max()]
        np.testing.assert_allclose(local.min(axis=0), lo, atol=1e-3)
        np.testing.assert_allclose(local.max(axis=0), hi, atol=1e-3)
        for seg in box:   # every edge is axis-aligned
            d = seg[1] - seg[0]
            assert np.count_nonzero(np.abs(d) > 1e-4) == 1
    off = small_spec(deco={"outlines": False})
    assert not [l for l in plan_from_spec(off).lines if l.key == "outlines"]


def test_row_guides_trace_the_rows():
    spec = from_dict({"expr": "A @ B", "layout": {"gap": 1},
                      "matrix": {"A": {"h": 3, "w": 4}, "B": {"h": 4, "w": 33}}})
    plan = plan_from_spec(spec)
    guides = next(l for l in plan.lines if l.key == "row_guides")
    # per matrix (one block each): 2 side edges + one line per row (every (h-1)/8 rows when
    # taller than 9) + 1 diagonal mark; result 3 rows, A 3 rows, B 4 rows
    assert guides.segments.shape == ((2 + 3 + 1) + (2 + 3 + 1) + (2 + 4 + 1), 2, 3)
    segs = {tuple(np.round(s, 4).ravel()) for s in guides.segments}
    for m in plan.matrices:
        pos = m.positions.reshape(m.rows, m.cols, 3)
        for r in range(m.rows):       # a line from the first to the last cell of every row
            assert tuple(np.round(np.stack([pos[r, 0], pos[r, -1]]), 4).ravel()) in segs
    off = from_dict({"expr": "A @ B", "deco": {"row_guides": 0}})
    assert not [l for l in plan_from_spec(off).lines if l.key == "row_guides"]


def test_row_guides_with_blocks_and_tall_matrices():
    spec = from_dict({"expr": "A @ B", "blocks": {"i": 2},
                      "matrix": {"A": {"h": 34, "w": 2}, "B": {"h": 2, "w": 2}}})
    plan = plan_from_spec(spec)
    guides = next(l for l in plan.lines if l.key == "row_guides")
    # A and the result: 2 i-blocks of 17 rows -> stride 2 -> 9 row lines each (+ 3)
    # B: one block of 2 rows -> 2 + 2 + 1
    assert len(guides.segments) == 2 * 2 * (2 + 9 + 1) + (2 + 2 + 1)


def test_labels(small):
    spec, _, layout, plan = small
    names = [l for l in plan.labels if l.kind == "name"]
    shapes = [l for l in plan.labels if l.kind == "shape"]
    assert sorted(l.text for l in names) == sorted(m.name for m in plan.matrices)
    # I=/K=/J= labels beside each of the 4 leaves and the root result
    assert len(shapes) == 2 * (4 + 1)
    texts = {l.key: l.text for l in shapes}
    assert texts["out.rows"] == "I = 5 / 2" and texts["out.cols"] == "J = 6"
    assert texts["A.rows"] == "I = 5 / 2" and texts["A.cols"] == "K = 3 / 3"   # AB: k 3
    assert texts["B.rows"] == "K = 3 / 3" and texts["B.cols"] == "J = 4 / 2"   # root k 2
    assert len({l.key for l in plan.labels}) == len(plan.labels)
    for l in plan.labels:
        assert l.size > 0 and l.position.shape == (3,)
    no_legends = plan_from_spec(small_spec(deco={"legends": 0}))
    assert no_legends.labels == []
    no_shapes = plan_from_spec(small_spec(deco={"shape_labels": False}))
    assert all(l.kind == "name" for l in no_shapes.labels) and len(no_shapes.labels) == 7


def test_bounds_contain_everything(small):
    _, _, _, plan = small
    lo, hi = plan.bounds_min - 1e-3, plan.bounds_max + 1e-3
    inside = lambda p: bool(np.all(p >= lo) and np.all(p <= hi))
    for m in plan.matrices:
        assert inside(m.positions)
    for cp in plan.cubes:
        unit = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)])
        assert inside(cp.origin + (unit * cp.extent) @ cp.axes)
    for l in plan.labels:
        assert inside(l.position)
    for lines in plan.lines:
        assert inside(lines.segments.reshape(-1, 3))
    for tri in plan.triangles:
        assert inside(tri.vertices.reshape(-1, 3))
    # and are tight: some cube corner touches each side
    corners = np.concatenate([cp.origin + (np.array([[0, 0, 0], [1, 1, 1]]) * cp.extent) @ cp.axes
                              for cp in plan.cubes])
    assert np.all(plan.bounds_max >= corners.max(axis=0) - 1e-4)


def test_scene_options_reach_the_plan():
    spec = small_spec(viz={"cell_shape": "sphere"}, look={"background": "paper", "view": "iso"})
    plan = plan_from_spec(spec)
    assert (plan.cell_shape, plan.background, plan.view) == ("sphere", "paper", "iso")


def test_big_attention_plan_cell_count():
    spec = load_toml(PRESETS / "attention_gaussian.toml")
    plan = plan_from_spec(spec)
    leaves = 2 * 256 * 768 + 768 * 64 + 64 * 768 + 768 * 256 + 768 * 64 + 64 * 768
    results = 256 * 64 + 64 * 256 + 256 * 256 + 256 * 64 + 256 * 64 + 256 * 768
    assert plan.cell_count() == leaves + results == 1_114_112
    assert sum(len(m.positions) for m in plan.matrices) == 1_114_112
    assert sum(len(m.colors) for m in plan.matrices) == 1_114_112
    assert len(plan.matrices) == 13 and len(plan.cubes) == 6
    assert {m.key for m in plan.matrices} >= {"input", "input (2)", "out", "attn", "wO"}
    attn = next(m for m in plan.matrices if m.key == "attn")
    assert attn.epilogue == "softmax(tril(x/sqrt(k)))" and (attn.left, attn.right) == ("Q", "K_t")
