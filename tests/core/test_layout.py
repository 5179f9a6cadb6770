"""Layout geometry against mm's rules.

The central invariant, checked for every matmul of random expression trees: with P(i, j, k)
the interior point of product (i, k, j), result cell (i, j), left cell (i, k) and right cell
(k, j) are exactly the projections of P onto their faces (along the cube's local z, x and y
axes), each face lies in a bounding plane of its cube (moved out by scatter), a child's result
face is its parent's argument face, and partition blocks are separated by gap + 1 cells.
Then mm's layout-scheme table (checked against every derived layout stored in the article's
examples), scatter/molecule/blast, no face crossing another cube in the article's examples,
and the conversion to Blender's frame.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm_blender.core import expr as E
from mm_blender.core.layout import TO_BLENDER, child_placement, compute_layout
from mm_blender.core.spec import Placement, from_dict

ARTICLE = json.loads((Path(__file__).resolve().parent.parent / "data" / "mm_article_examples.json").read_text())
EPS = 1e-9
EX, EY, EZ = np.eye(3)


# --------------------------------------------------------------------------------------------
# Independent statements of mm's rules (transcribed from mm's viz.js, not from our layout.py)

# LAYOUT_RULES on booleans: pol = positive, left = 'right' placement, right = 'bottom'
# placement, res = 'back' placement (index 1 of each choice list).
MM_RULES = {
    "blocks": lambda is_left, pol, left, right, res: (
        not pol, (pol != res) if is_left else (not left),
        (not right) if is_left else (pol != res), pol == (left if is_left else right)),
    "zigzag": lambda is_left, pol, left, right, res: (
        not pol, (pol != res) if is_left else left,
        right if is_left else (pol != res), pol == (left if is_left else right)),
    "wheel": lambda is_left, pol, left, right, res: (pol, left, right, res),
}


def mm_child(parent: Placement, scheme: str, is_left: bool) -> Placement:
    b = (parent.polarity == "positive", parent.left_placement == "right",
         parent.right_placement == "bottom", parent.result_placement == "back")
    pol, left, right, res = MM_RULES[scheme](is_left, *b)
    return Placement("positive" if pol else "negative", "right" if left else "left",
                     "bottom" if right else "top", "back" if res else "front")


def mm_scatter(count: int, total: int, layout) -> float:
    """mm's scatterFromCount."""
    if count < layout.molecule:
        return 0.0
    mult = count ** layout.blast if layout.blast >= 0 else (total - count) ** -layout.blast
    return layout.scatter * mult


def block_size(n: int, nb: int) -> int:
    return math.ceil(n / min(nb, n))


def shown(n: int, nb: int, gap: float) -> float:
    """Length of n cells split into blocks, with `gap` between blocks."""
    size = block_size(n, nb)
    return n + gap * (math.ceil(n / size) - 1)


def steps(n: int, nb: int, gap: float) -> np.ndarray:
    """Expected distance from index t to t + 1: 1 inside a block, gap + 1 across blocks."""
    size = block_size(n, nb)
    t = np.arange(n - 1)
    return np.where((t + 1) % size == 0, gap + 1.0, 1.0)


def count(node) -> int:
    return E.count_matmuls(node) if isinstance(node, E.MatMul) else 0


def role(node) -> str:
    return "result" if isinstance(node, E.MatMul) else "leaf"


def to_local(cube, pts):
    return (np.asarray(pts) - cube.world.t) @ cube.world.R


def assert_parallel(diff, axis, what):
    """Every vector in diff (..., 3) is a multiple of the unit vector axis."""
    along = diff @ axis
    perp = diff - along[..., None] * axis
    assert np.abs(perp).max(initial=0.0) < 1e-9, what


def assert_steps(pos, axis_index, direction, expected, what):
    """Consecutive cells along an array axis are `expected` apart, in `direction`."""
    d = np.diff(pos, axis=axis_index)
    want = np.expand_dims(expected, tuple(a for a in range(d.ndim - 1) if a != axis_index))
    want = np.broadcast_to(want[..., None] * direction, d.shape)
    np.testing.assert_allclose(d, want, atol=1e-9, err_msg=what)


# --------------------------------------------------------------------------------------------
# The invariant for one matmul node


def check_matmul(lay, spec, node, total, checked_planes):
    L = spec.layout
    g = float(L.gap)
    cube = lay.cube(node.path)
    R, t = cube.world.R, cube.world.t
    # an axis-aligned proper rotation
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert round(np.linalg.det(R)) == 1 and np.allclose(R, np.round(R))
    ax, ay, az = R @ EX, R @ EY, R @ EZ

    H, D = spec.shape(node.left)
    W = spec.shape(node.right)[1]
    assert (cube.rows, cube.depth, cube.cols) == (H, D, W)
    bi, bj, bk = cube.blocks
    ext = cube.extent()
    np.testing.assert_allclose(ext, [shown(W, bj, g) + 2 * g - 1, shown(H, bi, g) + 2 * g - 1,
                                     shown(D, bk, g) + 2 * g - 1])
    p = cube.placement
    positive = p.polarity == "positive"

    I, J, K = np.meshgrid(np.arange(H), np.arange(W), np.arange(D), indexing="ij")
    P = cube.mm_interior(I, J, K)                       # (H, W, D, 3)
    assert P.shape == (H, W, D, 3)
    Pl = to_local(cube, P)
    assert (Pl >= g - EPS).all() and (Pl <= ext - g + EPS).all(), "products inside the cube"

    res = lay.mat(node.path, "result")
    left = lay.mat(node.left.path, role(node.left))
    right = lay.mat(node.right.path, role(node.right))
    assert (res.rows, res.cols, left.rows, left.cols, right.rows, right.cols) == \
        (H, W, H, D, D, W)
    rpos = res.mm_positions().reshape(H, W, 3)
    lpos = left.mm_positions().reshape(H, D, 3)
    gpos = right.mm_positions().reshape(D, W, 3)

    # projections: result (i, j), left (i, k), right (k, j) of P(i, j, k)
    assert_parallel(rpos[:, :, None, :] - P, az, f"{node.name}: result is P along z")
    assert_parallel(lpos[:, None, :, :] - P, ax, f"{node.name}: left is P along x")
    assert_parallel(np.transpose(gpos, (1, 0, 2))[None] - P, ay,
                    f"{node.name}: right is P along y")

    # each face lies in a bounding plane of the cube (moved out by scatter for child matmuls)
    ls = mm_scatter(count(node.left), total, L)
    rs = mm_scatter(count(node.right), total, L)
    assert (cube.left_scatter, cube.right_scatter) == pytest.approx((ls, rs))
    rl, ll, gl = to_local(cube, rpos), to_local(cube, lpos), to_local(cube, gpos)
    z_res = 0.0 if p.result_placement == "front" else ext[2]
    x_left = -ls if p.left_placement == "left" else ext[0] + ls
    y_right = -rs if p.right_placement == "top" else ext[1] + rs
    np.testing.assert_allclose(rl[..., 2], z_res, atol=EPS)
    consistent = L.scheme in ("blocks", "zigzag")
    if isinstance(node.left, E.Leaf) or consistent:
        np.testing.assert_allclose(ll[..., 0], x_left, atol=EPS)
        checked_planes.append("left")
    if isinstance(node.right, E.Leaf) or consistent:
        np.testing.assert_allclose(gl[..., 1], y_right, atol=EPS)
        checked_planes.append("right")
    # and every cell is inside the face's rectangle (with the gap margin)
    for loc, dims in ((rl, (0, 1)), (ll, (1, 2)), (gl, (0, 2))):
        for d in dims:
            assert (loc[..., d] >= g - EPS).all() and (loc[..., d] <= ext[d] - g + EPS).all()

    # child matmul cubes sit against the argument face, scatter away from it
    for child, is_left, gap_out in ((node.left, True, ls), (node.right, False, rs)):
        if not isinstance(child, E.MatMul):
            continue
        cc = lay.cube(child.path)
        assert cc.placement == mm_child(p, L.scheme, is_left)
        corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)])
        box = to_local(cube, cc.world.apply(corners * cc.extent()))
        lo, hi = box.min(axis=0), box.max(axis=0)
        depth = cc.extent()[2]
        a = 0 if is_left else 1
        near_low = (p.left_placement == "left") if is_left else (p.right_placement == "top")
        if near_low:
            np.testing.assert_allclose([lo[a], hi[a]], [-gap_out - depth, -gap_out], atol=EPS)
        else:
            np.testing.assert_allclose([lo[a], hi[a]], [ext[a] + gap_out, ext[a] + gap_out + depth],
                                       atol=EPS)
        for other in {0, 1, 2} - {a}:
            np.testing.assert_allclose([lo[other], hi[other]], [0, ext[other]], atol=EPS)
        # the shared face is on the child's own result plane too
        own = to_local(cc, (lpos if is_left else gpos).reshape(-1, 3))
        np.testing.assert_allclose(own[:, 2], 0.0 if cc.placement.result_placement == "front"
                                   else cc.extent()[2], atol=EPS)
        # block counts propagate (mm: left inherits i, takes k as j; right takes k as i)
        kb = spec.matmul(child).k_blocks
        assert cc.blocks == ((bi, bk, kb) if is_left else (bk, bj, kb))
    if isinstance(node.left, E.Leaf):
        assert (left.blocks_i, left.blocks_j) == (bi, bk)
    if isinstance(node.right, E.Leaf):
        assert (right.blocks_i, right.blocks_j) == (bk, bj)

    # partitions: gap + 1 between blocks, 1 inside a block, along the right directions
    kdir = az if positive else -az
    assert_steps(rpos, 0, ay, steps(H, bi, g), "result rows")
    assert_steps(rpos, 1, ax, steps(W, bj, g), "result cols")
    assert_steps(lpos, 0, ay, steps(H, bi, g), "left rows")
    assert_steps(lpos, 1, kdir, steps(D, bk, g), "left k")
    assert_steps(gpos, 0, kdir, steps(D, bk, g), "right k")
    assert_steps(gpos, 1, ax, steps(W, bj, g), "right cols")
    assert_steps(P, 2, kdir, steps(D, bk, g), "interior k")


def check_layout(spec):
    lay = compute_layout(spec)
    total = E.count_matmuls(spec.tree)
    nodes = list(E.walk(spec.tree))
    # one drawn matrix per leaf occurrence and per matmul, one cube per matmul
    assert len(lay.mats) == len(nodes) and len(lay.cubes) == total
    assert len({(m.path, m.role) for m in lay.mats}) == len(nodes)
    assert lay.cube("").placement == spec.layout.placement
    assert lay.cube("").blocks == (spec.blocks.i, spec.blocks.j, spec.blocks.k)
    planes = []
    for node in E.matmuls(spec.tree):
        check_matmul(lay, spec, node, total, planes)
    return lay, planes


# --------------------------------------------------------------------------------------------
# Random expression trees


@st.composite
def random_specs(draw):
    n = draw(st.integers(2, 6))
    dims = draw(st.lists(st.integers(1, 7), min_size=n + 1, max_size=n + 1))

    def bracket(lo, hi):   # leaves lo .. hi-1; shapes (dims[t], dims[t+1]) always chain
        if hi - lo == 1:
            return f"M{lo}"
        s = draw(st.integers(lo + 1, hi - 1))
        return f"({bracket(lo, s)} @ {bracket(s, hi)})"

    text = bracket(0, n)
    tree = E.parse(text)
    scatter = draw(st.sampled_from([0, 0, 0, 1, 2.5]))
    data = {
        "expr": text,
        "layout": {
            "scheme": draw(st.sampled_from(["blocks", "zigzag", "wheel"])),
            "polarity": draw(st.sampled_from(["negative", "positive"])),
            "left_placement": draw(st.sampled_from(["left", "right"])),
            "right_placement": draw(st.sampled_from(["top", "bottom"])),
            "result_placement": draw(st.sampled_from(["front", "back"])),
            "gap": draw(st.sampled_from([1, 2, 3, 4, 1.5])),
            "scatter": scatter,
            "molecule": draw(st.integers(1, 3)),
            "blast": draw(st.sampled_from([-1, 0, 0, 1])),
        },
        "blocks": {a: draw(st.integers(1, 3)) for a in "ijk"},
        "matrix": {f"M{t}": {"h": dims[t], "w": dims[t + 1]} for t in range(n)},
        "matmul": {m.name: {"k_blocks": draw(st.integers(1, 3))}
                   for m in E.matmuls(tree) if m.path},
    }
    return from_dict(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs())
def test_layout_invariant_random_trees(spec):
    check_layout(spec)


def test_invariant_checker_sees_argument_planes():
    """The consistent schemes put every argument face on its cube's bounding plane."""
    spec = from_dict({"expr": "A @ B @ (C @ D)", "layout": {"gap": 2},
                      "matrix": {n: {"h": 3, "w": 3} for n in "ABCD"}})
    _, planes = check_layout(spec)
    assert planes.count("left") == 3 and planes.count("right") == 3


def test_invariant_checker_can_fail():
    """A layout with one face moved by one cell breaks the checks."""
    spec = from_dict({"expr": "A @ B", "layout": {"gap": 2},
                      "matrix": {"A": {"h": 3, "w": 2}, "B": {"h": 2, "w": 4}}})
    lay = compute_layout(spec)
    lay.mat("l", "leaf").world.t = lay.mat("l", "leaf").world.t + np.array([0.0, 1.0, 0.0])
    with pytest.raises(AssertionError):
        check_matmul(lay, spec, spec.tree, 1, [])


@pytest.mark.parametrize("scheme", ["blocks", "zigzag", "wheel"])
def test_invariant_deep_trees_with_partitions(scheme):
    spec = from_dict({
        "expr": "out = (attn = (Q = x @ wQ) @ (K_t = wK @ x_t)) @ (V = x @ wV) @ wO",
        "layout": {"gap": 2, "scheme": scheme, "scatter": 1.5, "molecule": 2},
        "blocks": {"i": 3, "j": 2, "k": 2},
        "matrix": {"x": {"h": 7, "w": 5}, "wQ": {"h": 5, "w": 3}, "wK": {"h": 3, "w": 5},
                   "x_t": {"h": 5, "w": 7}, "wV": {"h": 5, "w": 3}, "wO": {"h": 3, "w": 4}},
        "matmul": {"attn": {"k_blocks": 2}, "V": {"k_blocks": 3}, "Q": {"k_blocks": 2}}})
    check_layout(spec)


# --------------------------------------------------------------------------------------------
# Hand-computed positions


def test_single_matmul_positions_by_hand():
    """mm's default cube, gap 2: A (3x2) on the left face, B (2x4) on the top face."""
    spec = from_dict({"expr": "A @ B", "layout": {"gap": 2},
                      "matrix": {"A": {"h": 3, "w": 2}, "B": {"h": 2, "w": 4}}})
    lay = compute_layout(spec)
    cube = lay.cube("")
    np.testing.assert_allclose(cube.world.R, np.eye(3))
    np.testing.assert_allclose(cube.extent(), [4 + 3, 3 + 3, 2 + 3])
    # result (i, j) at (j + g, i + g, 0)
    res = lay.mat("", "result").mm_positions()
    np.testing.assert_allclose(res[4 * 1 + 2], [2 + 2, 1 + 2, 0])
    # negative polarity: k runs from the back face (z = ext - g - k)
    left = lay.mat("l", "leaf").mm_positions().reshape(3, 2, 3)
    np.testing.assert_allclose(left[2, 1], [0, 2 + 2, 5 - 2 - 1])
    right = lay.mat("r", "leaf").mm_positions().reshape(2, 4, 3)
    np.testing.assert_allclose(right[1, 3], [3 + 2, 0, 5 - 2 - 1])
    np.testing.assert_allclose(cube.mm_interior(2, 3, 1), [3 + 2, 2 + 2, 5 - 2 - 1])


def test_left_assoc_chain_grows_sideways_right_assoc_vertically():
    mats = {"A": {"h": 2, "w": 3}, "B": {"h": 3, "w": 4}, "C": {"h": 4, "w": 5}}
    lay = compute_layout(from_dict({"expr": "A @ B @ C", "layout": {"gap": 1}, "matrix": mats}))
    child = lay.cube("l")
    # root ext = (5+1, 2+1, 4+1); child ext = (4+1, 2+1, 3+1) sits at x in [-4, 0]
    corners = child.world.apply(np.array([[0, 0, 0], child.extent()]))
    np.testing.assert_allclose(np.sort(corners[:, 0]), [-4, 0])
    np.testing.assert_allclose(np.sort(corners[:, 1]), [0, 3])
    np.testing.assert_allclose(np.sort(corners[:, 2]), [0, 5])
    ab = lay.mat("l", "result").mm_positions().reshape(2, 4, 3)
    np.testing.assert_allclose(ab[1, 2], [0, 1 + 1, 5 - 1 - 2])

    mats = {"A": {"h": 2, "w": 3}, "B": {"h": 3, "w": 4}, "C": {"h": 4, "w": 5}}
    lay = compute_layout(from_dict({"expr": "A @ (B @ C)", "layout": {"gap": 1},
                                    "matrix": mats}))
    child = lay.cube("r")
    corners = child.world.apply(np.array([[0, 0, 0], child.extent()]))
    assert np.sort(corners[:, 1])[1] == pytest.approx(0)      # above the root (y < 0)
    assert np.sort(corners[:, 1])[0] < 0
    np.testing.assert_allclose(np.sort(corners[:, 0]), [0, 6])


# --------------------------------------------------------------------------------------------
# Scheme rules


def test_blocks_rule_from_the_brief():
    root = Placement("negative", "left", "top", "front")
    assert child_placement(root, "blocks", True) == Placement("positive", "left", "bottom", "back")
    assert child_placement(root, "blocks", False) == Placement("positive", "right", "top", "back")
    pos = Placement("positive", "left", "bottom", "back")
    assert child_placement(pos, "blocks", True) == Placement("negative", "left", "top", "front")
    assert child_placement(pos, "blocks", False) == Placement("negative", "right", "top", "back")


@pytest.mark.parametrize("scheme", ["blocks", "zigzag", "wheel"])
def test_child_placement_matches_mm_table_for_all_parents(scheme):
    import itertools
    for pol, left, right, res in itertools.product(("negative", "positive"), ("left", "right"),
                                                   ("top", "bottom"), ("front", "back")):
        parent = Placement(pol, left, right, res)
        for is_left in (True, False):
            assert child_placement(parent, scheme, is_left) == mm_child(parent, scheme, is_left)


def _placement(layout: dict) -> Placement:
    return Placement(layout["polarity"], layout["left placement"], layout["right placement"],
                     layout["result placement"])


def test_blocks_rule_reproduces_every_derived_layout_in_the_article():
    checked = 0
    for entry in ARTICLE:
        params = entry["params"]
        assert params["layout"]["scheme"] == "blocks"

        def visit(jnode, place):
            nonlocal checked
            for side in ("left", "right"):
                child = jnode[side]
                if child.get("matmul"):
                    want = _placement(child["layout"])
                    assert child_placement(place, "blocks", side == "left") == want, \
                        (entry["label"], child["name"])
                    checked += 1
                    visit(child, want)

        visit(params, _placement(params["layout"]))
    assert checked == 125


# --------------------------------------------------------------------------------------------
# Scatter, molecule, blast


def _distance_to_child(lay, path):
    """Gap between a child's cube and its parent's cube along the axis they touch on."""
    parent, child = lay.cube(path[:-1]), lay.cube(path)
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)])
    box = to_local(parent, child.world.apply(corners * child.extent()))
    a = 0 if path[-1] == "l" else 1
    ext = parent.extent()[a]
    lo, hi = box[:, a].min(), box[:, a].max()
    return -hi if hi <= EPS else lo - ext


@pytest.mark.parametrize("scatter, molecule, blast, want", [
    # A @ B @ C @ D: the root's left child holds 2 matmuls, its left child 1
    (0, 1, 0, {"l": 0, "ll": 0}),
    (3, 1, 0, {"l": 3, "ll": 3}),
    (3, 1, 1, {"l": 6, "ll": 3}),
    (3, 2, 1, {"l": 6, "ll": 0}),
    (3, 1, -1, {"l": 3 * (3 - 2), "ll": 3 * (3 - 1)}),
    (2, 1, 2, {"l": 2 * 4, "ll": 2}),
])
def test_scatter_moves_children_outward(scatter, molecule, blast, want):
    spec = from_dict({"expr": "A @ B @ C @ D",
                      "layout": {"gap": 1, "scatter": scatter, "molecule": molecule,
                                 "blast": blast},
                      "matrix": {n: {"h": 2, "w": 2} for n in "ABCD"}})
    lay = compute_layout(spec)
    for path, distance in want.items():
        assert _distance_to_child(lay, path) == pytest.approx(distance), path
    check_layout(spec)


def test_scatter_on_both_sides():
    spec = from_dict({"expr": "A @ B @ (C @ D)",
                      "layout": {"gap": 1, "scatter": 4},
                      "matrix": {n: {"h": 2, "w": 2} for n in "ABCD"}})
    lay = compute_layout(spec)
    assert _distance_to_child(lay, "l") == pytest.approx(4)
    assert _distance_to_child(lay, "r") == pytest.approx(4)


# --------------------------------------------------------------------------------------------
# The article's examples: faces never cross another cube


def article_spec(entry):
    """A spec with the example's expression, shapes, blocks and layout (values row major).

    A name mm uses for two differently shaped leaves (attention_decoding's `input`) is split
    into two names, since a name means one matrix here."""
    params = entry["params"]
    tree = E.parse(params["expr"])
    shapes, k_blocks = {}, {}

    def visit(jnode, node):
        if isinstance(node, E.Leaf):
            shape, name, n = (jnode["h"], jnode["w"]), node.name, 2
            while name in shapes and shapes[name] != shape:
                name, n = f"{node.name}_{n}", n + 1
            node.name = name
            shapes[name] = shape
            return
        block = jnode.get("block", {})
        # only k blocks are a matmul's own: mm overrides a child's stored i/j blocks from
        # its parent when it draws (MatMul.initLeft/initRight), so stored ones may be stale
        k_blocks[node.path] = block.get("k blocks", 1)
        visit(jnode["left"], node.left)
        visit(jnode["right"], node.right)

    visit(params, tree)
    text = E.to_text(tree)
    tree = E.parse(text)
    lay, blk = params["layout"], params["block"]
    data = {
        "expr": text,
        "layout": {"scheme": lay["scheme"], "gap": lay["gap"], "scatter": lay["scatter"],
                   "molecule": lay["molecule"], "blast": lay["blast"],
                   "polarity": lay["polarity"], "left_placement": lay["left placement"],
                   "right_placement": lay["right placement"],
                   "result_placement": lay["result placement"]},
        "blocks": {"i": blk["i blocks"], "j": blk["j blocks"], "k": blk["k blocks"]},
        "matrix": {n: {"h": h, "w": w, "init": "row major"} for n, (h, w) in shapes.items()},
        "matmul": {m.name: {"k_blocks": k_blocks[m.path]} for m in E.matmuls(tree)
                   if m.path and k_blocks[m.path] != 1},
    }
    return from_dict(data, name=entry["label"])


def face_crosses_cube(corners_world, cube, tol=1e-6) -> bool:
    """Whether a flat axis-aligned rectangle (4 world corners) meets the open interior of a
    cube (all rotations are quarter turns, so it is axis-aligned in the cube's frame)."""
    loc = to_local(cube, corners_world)
    lo, hi = loc.min(axis=0), loc.max(axis=0)
    ext = cube.extent()
    return bool(np.all(lo < ext - tol) and np.all(hi > tol))


def face_corners(mat):
    e = mat.extent()
    return mat.world.apply(np.array([[0, 0, 0], [e[0], 0, 0], [0, e[1], 0], [e[0], e[1], 0]]))


def test_face_crossing_check_can_fail():
    spec = from_dict({"expr": "A @ B", "matrix": {"A": {"h": 4, "w": 4}, "B": {"h": 4, "w": 4}}})
    lay = compute_layout(spec)
    cube, res = lay.cube(""), lay.mat("", "result")
    assert not face_crosses_cube(face_corners(res), cube)     # on its own bounding plane
    inside = face_corners(res) + cube.world.R @ np.array([0, 0, 2.0])
    assert face_crosses_cube(inside, cube)


@pytest.mark.parametrize("entry", ARTICLE, ids=[e["label"] for e in ARTICLE])
def test_article_examples_faces_do_not_cross_other_cubes(entry):
    spec = article_spec(entry)
    lay = compute_layout(spec)
    for mat in lay.mats:
        own = {mat.path[:-1]} if mat.role == "leaf" else {mat.path, mat.path[:-1]}
        corners = face_corners(mat)
        for cube in lay.cubes:
            if cube.path not in own:
                assert not face_crosses_cube(corners, cube), (mat.node.name, cube.node.name)
    # cubes do not overlap each other either
    boxes = []
    for cube in lay.cubes:
        c = cube.world.apply(np.array([[0, 0, 0], cube.extent()]))
        boxes.append((c.min(axis=0), c.max(axis=0)))
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            overlap = np.minimum(boxes[a][1], boxes[b][1]) - np.maximum(boxes[a][0], boxes[b][0])
            assert not np.all(overlap > 1e-6), (lay.cubes[a].node.name, lay.cubes[b].node.name)


def test_article_placements_come_out_of_compute_layout():
    entry = next(e for e in ARTICLE if e["label"] == "lora_head")
    spec = article_spec(entry)
    lay = compute_layout(spec)
    tree = E.parse(entry["params"]["expr"])

    def visit(jnode, node):
        if isinstance(node, E.MatMul):
            if node.path:
                assert lay.cube(node.path).placement == _placement(jnode["layout"])
            visit(jnode["left"], node.left)
            visit(jnode["right"], node.right)

    visit(entry["params"], tree)


def test_small_article_example_satisfies_the_invariant():
    """lora_head's tree (10 matmuls, scatter with molecule 2) with every leaf 4x4."""
    entry = next(e for e in ARTICLE if e["label"] == "lora_head")
    spec = article_spec(entry)
    check_layout(from_dict({"expr": spec.expr,
                            "layout": {"gap": 2, "scatter": 8, "molecule": 2},
                            "matrix": {n: {"h": 4, "w": 4} for n in spec.leaves}}))


# --------------------------------------------------------------------------------------------
# Blender's frame


def test_blender_frame_root_faces_the_front_camera():
    spec = from_dict({"expr": "A @ B", "layout": {"gap": 2},
                      "matrix": {"A": {"h": 3, "w": 2}, "B": {"h": 2, "w": 4}}})
    lay = compute_layout(spec)
    np.testing.assert_allclose(TO_BLENDER @ EX, [1, 0, 0])     # j -> +X
    np.testing.assert_allclose(TO_BLENDER @ EY, [0, 0, -1])    # i (down) -> -Z
    np.testing.assert_allclose(TO_BLENDER @ EZ, [0, 1, 0])     # depth -> +Y
    res = lay.mat("", "result")
    pos = lay.positions(res).reshape(3, 4, 3).astype(np.float64)
    np.testing.assert_allclose(pos[1:] - pos[:-1], np.broadcast_to([0, 0, -1], (2, 4, 3)))
    np.testing.assert_allclose(pos[:, 1:] - pos[:, :-1], np.broadcast_to([1, 0, 0], (3, 3, 3)))
    # the outward normal of the root's result face points to -Y (toward the front camera)
    origin, axes, extent = lay.cube_box(lay.cube(""))
    centre = origin + (extent / 2) @ axes
    face_centre = pos.reshape(-1, 3).mean(axis=0)
    outward = face_centre - centre
    outward /= np.linalg.norm(outward)
    np.testing.assert_allclose(outward, [0, -1, 0], atol=1e-9)
    # the left leaf is on the -X side, the right leaf above (+Z)
    left = lay.positions(lay.mat("l", "leaf"))
    right = lay.positions(lay.mat("r", "leaf"))
    assert np.ptp(left[:, 0]) == 0 and left[0, 0] < centre[0]
    assert np.ptp(right[:, 2]) == 0 and right[0, 2] > centre[2]


def test_blender_positions_match_mm_positions_and_scene_is_centred():
    spec = from_dict({"expr": "A @ B @ (C @ D)", "layout": {"gap": 3}, "blocks": {"i": 2},
                      "matrix": {n: {"h": 5, "w": 5} for n in "ABCD"}})
    lay = compute_layout(spec)
    for mat in lay.mats:
        got = lay.positions(mat)
        assert got.dtype == np.float32 and got.shape == (mat.rows * mat.cols, 3)
        want = (mat.mm_positions() - lay.center) @ TO_BLENDER.T
        np.testing.assert_allclose(got, want, atol=1e-4)
    corners = []
    for cube in lay.cubes:
        origin, axes, extent = lay.cube_box(cube)
        unit = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)])
        corners.append(origin + (unit * extent) @ axes)
    corners = np.concatenate(corners)
    np.testing.assert_allclose((corners.min(axis=0) + corners.max(axis=0)) / 2, 0, atol=1e-9)
    # interior points in Blender's frame are the mm-frame ones converted
    cube = lay.cube("r")
    np.testing.assert_allclose(lay.interior(cube, 1, 2, 3),
                               lay.to_blender(cube.mm_interior(1, 2, 3)), atol=1e-4)
