"""The sweep schedule (core/sweep.py) against numpy: slices, written cells, partial sums,
k-block planes, highlights, mm's fusion protocol and timing."""
from __future__ import annotations

import numpy as np
import pytest

from mm_blender.core import spec as specmod
from mm_blender.core import sweep
from mm_blender.core.evaluate import apply_epilogue, evaluate
from mm_blender.core.scene_plan import make_plan

ALGS = sweep.ANIMATED


def plan_of(data: dict):
    spec = specmod.from_dict(data)
    return spec, make_plan(spec, evaluate(spec))


def single(alg, h=6, k=5, w=7, blocks=(1, 1, 1), epilogue="none", **anim):
    data = dict(expr="L @ R", anim=dict(alg=alg, **anim),
                blocks=dict(i=blocks[0], j=blocks[1], k=blocks[2]),
                matrix=dict(L=dict(h=h, w=k, init="gaussian"), R=dict(h=k, w=w, init="gaussian")),
                matmul={"L @ R": dict(epilogue=epilogue)})
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    sw = sched.sweeps["L @ R"]
    L = plan.matrix("L").values.reshape(h, k)
    R = plan.matrix("R").values.reshape(k, w)
    return spec, plan, sched, sw, L, R


SHAPES = [(6, 5, 7, (1, 1, 1)), (7, 6, 5, (2, 3, 2)), (5, 7, 6, (3, 2, 3)), (1, 1, 1, (1, 1, 1))]


def _coverage(sw, upto):
    """(rows, depth, cols) count of how often each product was in flight at steps <= upto."""
    seen = np.zeros((sw.rows, sw.depth, sw.cols), int)
    for t in range(upto + 1):
        i, k, j = sw.slice(t)
        seen[np.ix_(i, k, j)] += 1
    return seen


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("h,k,w,blocks", SHAPES)
def test_every_product_exactly_once(alg, h, k, w, blocks):
    _, _, sched, sw, L, R = single(alg, h, k, w, blocks)
    bi, bj, bk = (-(-n // min(b, n)) for n, b in ((h, blocks[0]), (w, blocks[1]), (k, blocks[2])))
    expected_steps = {"vmprod": bi, "mvprod": bj, "vvprod": bk, "dotprod (row major)": bi * bj,
                      "dotprod (col major)": bi * bj, "axpy": bk * bj}[alg]
    assert sw.steps == expected_steps
    assert sched.n_steps == sw.steps + 1              # the last step shows it complete
    assert sched.phase["L @ R"].tolist() == list(range(sw.steps + 1))
    assert (_coverage(sw, sw.steps - 1) == 1).all()
    for t in (-1, sw.steps):
        assert all(len(a) == 0 for a in sw.slice(t))
    # the scene allocates enough points for every slice
    assert max(np.prod([len(a) for a in sw.slice(t)]) for t in range(sw.steps)) \
        <= sw.product_count()


@pytest.mark.parametrize("alg", [a for a in ALGS if a not in sweep.ACCUMULATING])
@pytest.mark.parametrize("h,k,w,blocks", SHAPES)
def test_written_cells_are_the_completed_dot_products(alg, h, k, w, blocks):
    _, _, _, sw, L, R = single(alg, h, k, w, blocks)
    assert not sw.written(-1).any() and sw.written(sw.steps).all()
    previous = np.zeros((h, w), bool)
    for t in range(sw.steps):
        complete = _coverage(sw, t).sum(axis=1) == k
        np.testing.assert_array_equal(sw.written(t), complete)
        assert (sw.written(t) >= previous).all()
        previous = sw.written(t)
        i, kk, j = sw.slice(t)
        if alg == "vmprod":
            assert len(np.unique(i % sw.i.size)) == 1 and len(kk) == k and len(j) == w
        if alg == "mvprod":
            assert len(np.unique(j % sw.j.size)) == 1 and len(kk) == k and len(i) == h
        if alg.startswith("dotprod"):
            assert len(kk) == k      # one k-vector per block pair
            assert len(i) <= -(-h // sw.i.size) and len(j) <= -(-w // sw.j.size)
    assert previous.all()


@pytest.mark.parametrize("alg", ["vmprod", "mvprod"])
def test_row_and_column_order(alg):
    _, _, _, sw, _, _ = single(alg, 6, 4, 5)
    for t in range(sw.steps):
        written = sw.written(t)
        if alg == "vmprod":
            assert written[: t + 1].all() and not written[t + 1:].any()
        else:
            assert written[:, : t + 1].all() and not written[:, t + 1:].any()


def test_dotprod_orders():
    _, _, _, row, _, _ = single("dotprod (row major)", 3, 2, 4)
    _, _, _, col, _, _ = single("dotprod (col major)", 3, 2, 4)
    order_row = [tuple(np.argwhere(row.written(t) & ~row.written(t - 1))[0]) for t in range(12)]
    order_col = [tuple(np.argwhere(col.written(t) & ~col.written(t - 1))[0]) for t in range(12)]
    assert order_row == [(i, j) for i in range(3) for j in range(4)]
    assert order_col == [(i, j) for j in range(4) for i in range(3)]


@pytest.mark.parametrize("alg", sweep.ACCUMULATING)
@pytest.mark.parametrize("h,k,w,blocks", SHAPES)
@pytest.mark.parametrize("epilogue", ["none", "relu", "softmax(x/sqrt(k))"])
def test_partial_sums_are_the_products_so_far(alg, h, k, w, blocks, epilogue):
    _, _, _, sw, L, R = single(alg, h, k, w, blocks, epilogue)
    L64, R64 = L.astype(np.float64), R.astype(np.float64)
    pw = {"none": "none", "relu": "relu", "softmax(x/sqrt(k))": "x/sqrt(k)"}[epilogue]
    acc = np.zeros((h, w))
    for t in range(sw.steps):
        i, kk, j = sw.slice(t)
        for kv in kk:          # tiny matrices: add the slice's products one k at a time
            acc[np.ix_(i, j)] += np.outer(L64[i, kv], R64[kv, j])
        np.testing.assert_allclose(sw.partial(t, L, R), apply_epilogue(acc, pw, k),
                                   rtol=1e-12, atol=1e-12)
        touched = _coverage(sw, t).sum(axis=1) > 0
        np.testing.assert_array_equal(sw.written(t), touched)
    full = apply_epilogue(L64 @ R64, pw, k)
    np.testing.assert_allclose(sw.partial(sw.steps, L, R), full, rtol=1e-12, atol=1e-12)


def test_vvprod_partial_sums_are_cumsum_over_k():
    _, _, _, sw, L, R = single("vvprod", 5, 6, 4)
    L64, R64 = L.astype(np.float64), R.astype(np.float64)
    cum = np.cumsum(L64[:, :, None] * R64[None, :, :], axis=1)     # (i, k, j)
    for t in range(sw.steps):
        np.testing.assert_allclose(sw.partial(t, L, R), cum[:, t, :], rtol=1e-12)
        assert sw.written(t).all()          # every cell holds a partial sum from step 0
        np.testing.assert_array_equal(sw.k_count(t), t + 1)


def test_vvprod_k_blocks_add_in_parallel():
    _, _, _, sw, L, R = single("vvprod", 4, 7, 3, blocks=(1, 1, 3))   # k blocks of 3: 3, 3, 1
    assert sw.k.size == 3 and sw.k.blocks == 3 and sw.steps == 3
    assert not sw.k_planes
    L64, R64 = L.astype(np.float64), R.astype(np.float64)
    for t in range(3):
        ks = [k for k in range(7) if k % 3 <= t]
        np.testing.assert_allclose(sw.partial(t, L, R), L64[:, ks] @ R64[ks, :], rtol=1e-12)
        assert sorted(sw.slice(t)[1].tolist()) == [k for k in (t, 3 + t, 6 + t) if k < 7]


def test_axpy_column_by_column():
    _, _, _, sw, L, R = single("axpy", 3, 4, 5)
    L64, R64 = L.astype(np.float64), R.astype(np.float64)
    for t in range(sw.steps):
        col, kk = divmod(t, 4)
        expected = np.zeros((3, 5))
        expected[:, :col] = (L64 @ R64)[:, :col]
        expected[:, col] = L64[:, : kk + 1] @ R64[: kk + 1, col]
        np.testing.assert_allclose(sw.partial(t, L, R), expected, rtol=1e-12, atol=1e-15)
        assert sw.written(t)[:, : col + 1].all() and not sw.written(t)[:, col + 1:].any()


@pytest.mark.parametrize("alg", ["vmprod", "mvprod", "dotprod (row major)", "dotprod (col major)"])
def test_k_block_planes(alg):
    _, _, _, sw, L, R = single(alg, 5, 8, 4, blocks=(1, 1, 3), epilogue="gelu")
    assert sw.k_planes and sw.k.blocks == 3 and sw.k.size == 3
    planes = sw.block_sums(L, R)
    L64, R64 = L.astype(np.float64), R.astype(np.float64)
    for b, ks in enumerate((slice(0, 3), slice(3, 6), slice(6, 8))):
        np.testing.assert_allclose(planes[b], apply_epilogue(L64[:, ks] @ R64[ks, :], "gelu", 8),
                                   rtol=1e-12)
    # k blocks run in parallel: every slice spans every k
    for t in range(sw.steps):
        assert len(sw.slice(t)[1]) == 8


@pytest.mark.parametrize("alg,left,right", [
    ("vmprod", ("i", None), (None, None)),
    ("mvprod", (None, None), (None, "j")),
    ("vvprod", (None, "k"), ("k", None)),
    ("dotprod (row major)", ("i", None), (None, "j")),
    ("dotprod (col major)", ("i", None), (None, "j")),
    ("axpy", (None, "k"), ("k", "j")),
])
def test_highlights_follow_the_slice(alg, left, right):
    _, _, _, sw, _, _ = single(alg, 5, 4, 6, blocks=(2, 2, 2))
    assert (sw.left_hl, sw.right_hl) == (left, right)
    for t in range(sw.steps):
        i, k, j = sw.slice(t)
        hl = sw.left_highlight(t)
        rows = set(i.tolist()) if left[0] else set(range(5))
        cols = set(k.tolist()) if left[1] else set(range(4))
        expected = np.zeros((5, 4), bool)
        if left != (None, None):
            expected[np.ix_(sorted(rows), sorted(cols))] = True
        np.testing.assert_array_equal(hl, expected)
        hr = sw.right_highlight(t)
        rows = set(k.tolist()) if right[0] else set(range(4))
        cols = set(j.tolist()) if right[1] else set(range(6))
        expected = np.zeros((4, 6), bool)
        if right != (None, None):
            expected[np.ix_(sorted(rows), sorted(cols))] = True
        np.testing.assert_array_equal(hr, expected)
    assert not sw.left_highlight(sw.steps).any() and not sw.left_highlight(-1).any()


def test_products_values_are_float32_products():
    _, _, _, sw, L, R = single("mvprod", 4, 3, 5)
    i, k, j, v = sw.products(2, L, R)
    assert v.dtype == np.float32 and len(v) == 4 * 3
    assert set(j.tolist()) == {2}
    np.testing.assert_array_equal(v, L[i, k] * R[k, j])


def test_product_range():
    rng = np.random.default_rng(1)
    L, R = rng.normal(size=(6, 4)), rng.normal(size=(4, 5))
    brute = np.abs(L[:, :, None] * R[None, :, :]).max()
    assert sweep.product_range(L, R) == pytest.approx(brute)
    L[0, 0] = np.nan
    assert np.isfinite(sweep.product_range(L, R))


# --- expressions and fusion -------------------------------------------------------------------

ATTENTION = "out = (attn = (Q = input @ wQ) @ (K_t = wK_t @ input_t)) @ (V = input @ wV) @ wO"


def attention(fuse="sync", tokens=8, width=12, head=4, k_t="none", v="none", root="vmprod"):
    data = dict(
        expr=ATTENTION, anim=dict(alg=root, fuse=fuse),
        matrix=dict(input=dict(h=tokens, w=width, init="gaussian"),
                    input_t=dict(h=width, w=tokens, init="transpose", source="input"),
                    wQ=dict(h=width, w=head), wK_t=dict(h=head, w=width),
                    wV=dict(h=width, w=head), wO=dict(h=head, w=width)),
        matmul={"K_t": dict(alg=k_t), "V": dict(alg=v),
                "attn": dict(epilogue="softmax(tril(x/sqrt(k)))")})
    spec, plan = plan_of(data)
    return spec, plan, sweep.make_schedule(plan, spec.anim)


@pytest.mark.parametrize("fuse", ["sync", "async"])
def test_attention_chain_fuses_into_one_row_per_step(fuse):
    _, plan, sched = attention(fuse)
    chain = ["Q", "attn", "attn @ V", "out"]
    assert list(sched.sweeps) == chain
    assert sched.n_steps == 8 + 1
    for key in chain:
        assert sched.phase[key].tolist() == list(range(9))
    for s in range(8):
        slices = sched.in_flight(s)
        for key in chain:
            i, k, j = slices[key]
            assert i.tolist() == [s]        # row s travels from input to output in step s
        # and the row is written everywhere in the same step
        for key in chain:
            written = sched.sweeps[key].written(sched.local(key, s))
            assert written[: s + 1].all() and not written[s + 1:].any()


def test_attention_without_fusion_runs_leaves_to_root():
    _, _, sched = attention("none")
    assert sched.n_steps == 4 * 9
    for n, key in enumerate(["Q", "attn", "attn @ V", "out"]):
        ph = sched.phase[key]
        start = 9 * n
        assert (ph[:start] == -1).all()
        assert ph[start:start + 9].tolist() == list(range(9))
        assert (ph[start + 9:] == 8).all()


def test_animated_right_child_blocks_sync_vmprod_fusion():
    # mm: vmprod fuses only into a left vmprod child; K_t (right, vmprod) must finish first,
    # and under sync Q's row index then no longer matches, so attn waits for Q too.
    _, _, sched = attention("sync", k_t="vmprod")
    q, kt, attn = sched.phase["Q"], sched.phase["K_t"], sched.phase["attn"]
    assert kt.tolist()[:5] == [0, 1, 2, 3, 4]          # K_t (4 rows) and Q start together
    assert q.tolist()[:9] == list(range(9))
    first = int(np.argmax(attn >= 0))
    assert first == 9                                   # after Q is done (step 8)
    # async ignores the index: attn starts as soon as K_t is done
    _, _, asy = attention("async", k_t="vmprod")
    first_async = int(np.argmax(asy.phase["attn"] >= 0))
    assert first_async == 5


def test_independent_subtrees_run_in_parallel():
    data = dict(expr="A @ B @ (C @ D)", anim=dict(alg="vmprod"),
                matrix=dict(A=dict(h=4, w=3), B=dict(h=3, w=5), C=dict(h=5, w=2),
                            D=dict(h=2, w=6)))
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    ab, cd, root = sched.phase["A @ B"], sched.phase["C @ D"], sched.phase["A @ B @ (C @ D)"]
    assert ab[:4].tolist() == [0, 1, 2, 3] and cd[:5].tolist() == [0, 1, 2, 3, 4]
    assert int(np.argmax(root >= 0)) == 6               # after both (C @ D takes 5 + done)
    assert sched.n_steps == 6 + 4 + 1


def test_mvprod_fuses_into_right_mvprod_child():
    data = dict(expr="A @ (B @ C)", anim=dict(alg="mvprod", fuse="sync"),
                matrix=dict(A=dict(h=4, w=3), B=dict(h=3, w=5), C=dict(h=5, w=6)))
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    assert sched.phase["B @ C"].tolist() == list(range(7))
    assert sched.phase["A @ (B @ C)"].tolist() == list(range(7))
    # but not into a left one
    data["expr"] = "A @ B @ C"
    data["matrix"] = dict(A=dict(h=4, w=3), B=dict(h=3, w=5), C=dict(h=5, w=6))
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    assert int(np.argmax(sched.phase["A @ B @ C"] >= 0)) == 6


def test_vvprod_fuses_with_left_mvprod_and_right_vmprod():
    data = dict(expr="(A @ B) @ (C @ D)", anim=dict(alg="vvprod", fuse="sync"),
                matrix=dict(A=dict(h=4, w=3), B=dict(h=3, w=5), C=dict(h=5, w=2),
                            D=dict(h=2, w=6)),
                matmul={"A @ B": dict(alg="mvprod"), "C @ D": dict(alg="vmprod")})
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    # k of the root = columns of A @ B = rows of C @ D = 5: all three advance together
    assert list(sched.sweeps)[-1] == "A @ B @ (C @ D)"
    for key in ("A @ B", "C @ D", "A @ B @ (C @ D)"):
        assert sched.phase[key].tolist() == list(range(6)), key
    # with mismatching algorithms nothing fuses
    data["matmul"]["C @ D"] = dict(alg="mvprod")
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    assert int(np.argmax(sched.phase["A @ B @ (C @ D)"] >= 0)) > 5


def test_static_root_lets_animated_children_play():
    data = dict(expr="A @ B @ C", anim=dict(alg="none"),
                matrix=dict(A=dict(h=4, w=3), B=dict(h=3, w=5), C=dict(h=5, w=6)),
                matmul={"A @ B": dict(alg="vvprod")})
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    assert list(sched.sweeps) == ["A @ B"]
    assert sched.phase["A @ B"].tolist() == [0, 1, 2, 3]


def test_inherit_and_none_children():
    data = dict(expr="A @ B @ C", anim=dict(alg="mvprod"),
                matrix=dict(A=dict(h=4, w=3), B=dict(h=3, w=5), C=dict(h=5, w=6)))
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    assert {s.alg for s in sched.sweeps.values()} == {"mvprod"}
    data["matmul"] = {"A @ B": dict(alg="none")}
    spec, plan = plan_of(data)
    sched = sweep.make_schedule(plan, spec.anim)
    assert list(sched.sweeps) == ["A @ B @ C"] and sched.n_steps == 7


def test_nothing_animated():
    spec, plan = plan_of(dict(expr="A @ B"))
    sched = sweep.make_schedule(plan, spec.anim)
    assert sched.empty and sched.n_steps == 0 and sched.frame_range == (1, 1)


def test_preset_attention_gaussian_schedule():
    """The GPT-2-sized preset: every animated matmul is a vmprod over 256 rows. (Whether it
    plays as one fused chain depends on the preset's per-matmul algorithms.)"""
    from mm_blender.core import presets
    spec = presets.load("attention_gaussian")
    spec.anim.alg = "vmprod"
    spec.matmuls["K_t"].alg = "none"
    spec.matmuls["V"].alg = "none"
    from mm_blender.core.layout import compute_layout
    from mm_blender.core.scene_plan import cube_plans, object_keys
    layout = compute_layout(spec)
    keys = object_keys(layout)
    from mm_blender.core.plan import ScenePlan
    plan = ScenePlan(name="a", matrices=[], cubes=cube_plans(layout, keys), triangles=[],
                     lines=[], labels=[], bounds_min=np.zeros(3), bounds_max=np.ones(3))
    sched = sweep.make_schedule(plan, spec.anim)
    assert sched.n_steps == 257
    assert all((ph == np.arange(257)).all() for ph in sched.phase.values())
    sizes = {k: s.product_count() for k, s in sched.sweeps.items()}
    assert sizes == {"Q": 768 * 64, "attn": 64 * 256, "attn @ V": 256 * 64, "out": 64 * 768}


# --- timing -----------------------------------------------------------------------------------

def test_timing_frames_per_step():
    spec, plan, sched, sw, _, _ = single("vmprod", 6, 2, 2, frames_per_step=3)
    assert sched.step_frames == 3.0
    assert sched.frame_range == (1, 1 + 7 * 3 - 1)
    frames, values = sched.keys("L @ R")
    assert frames.tolist() == [1 + 3 * s for s in range(7)]
    assert values.tolist() == list(range(7))
    assert [sched.step_at(f) for f in (1, 3, 4, 21, 99)] == [0, 0, 1, 6, 6]


def test_timing_seconds_fit_the_whole_sweep():
    spec, plan, _, _, _, _ = single("vmprod", 9, 2, 2, seconds=2.0)
    sched = sweep.make_schedule(plan, spec.anim, fps=30)
    assert sched.n_steps == 10
    assert sched.step_frames == pytest.approx(6.0)
    assert sched.frame_range == (1, 60)
    sched = sweep.make_schedule(plan, spec.anim, fps=24, frame_start=10)
    assert sched.step_frames == pytest.approx(4.8)
    start, end = sched.frame_range
    assert start == 10 and end == 10 + 48 - 1
    assert sched.step_at(end) == 9             # the complete state is on screen at the end


def test_timing_from_speed():
    anim = specmod.AnimSpec(alg="vmprod", speed=12)
    assert sweep.frames_per_step(anim, 24, 100) == 2
    anim.speed = 48
    assert sweep.frames_per_step(anim, 24, 100) == 1      # never below one frame a step
    anim.speed = 1
    assert sweep.frames_per_step(anim, 30, 100) == 30
    anim.seconds = 0.5                                       # seconds beat speed
    assert sweep.frames_per_step(anim, 24, 6) == pytest.approx(2.0)
    anim.frames_per_step = 5                                 # explicit beats both
    assert sweep.frames_per_step(anim, 24, 6) == 5


def test_keys_only_where_the_step_changes():
    _, _, sched = attention("none")
    frames, values = sched.keys("out")
    assert values.tolist() == [-1] + list(range(9))
    assert frames[0] == sched.frame_start


def test_hide_inputs_lists_leaf_operands():
    spec, plan = plan_of(dict(expr="A @ B @ C", anim=dict(alg="vmprod", hide_inputs=True),
                              matrix=dict(A=dict(h=4, w=3), B=dict(h=3, w=5), C=dict(h=5, w=6))))
    sched = sweep.make_schedule(plan, spec.anim)
    assert sorted(sched.hidden) == ["A", "B", "C"]
