"""Sweeps as data: for every animated matmul and every step, which products are in flight, which
result cells are written (and for vvprod/axpy which partial sums they show), which input rows
and columns are highlighted; and when each step plays. Pure numpy, no bpy.

A matmul's own sweep is a sequence of *local steps* t = 0 .. T-1 (T = `MatmulSweep.steps`);
before it starts its local step is -1 (nothing written), once finished it is T (complete).
The whole animation is a sequence of *global steps*; `Schedule.phase[key][s]` is matmul `key`'s
local step at global step s. Everything a frame shows follows from those integers, so the scene
keyframes one integer per matmul and Geometry Nodes does the rest.

Local steps per algorithm (si, sj, sk are block sizes; blocks run in parallel, so every block
contributes its own slice at its own offset):

    vmprod               T = si      products (i0 + t, all k, all j); writes row i0 + t
    mvprod               T = sj      products (all i, all k, j0 + t); writes column j0 + t
    vvprod               T = sk      products (all i, k0 + t, all j); adds into every cell
    dotprod (row major)  T = si*sj   products (i0 + t // sj, all k, j0 + t % sj); one cell
    dotprod (col major)  T = si*sj   products (i0 + t % si, all k, j0 + t // si); one cell
    axpy                 T = sk*sj   products (all i, k0 + t % sk, j0 + t // sk); adds into
                                     a column, then moves on to the next one

Every axis of a slice is either "all" or "one index per block, at local offset
(t // div) % mod" (`Axis`), so a slice is always the cartesian product of three index sets.

Across an expression (mm's `initAnimation`/`bump` protocol, re-stated): children animate before
their parent, independent subtrees side by side. With fusion (`sync`/`async`) a parent starts
while its children run if their algorithms join: vmprod into a left vmprod child, mvprod into a
right mvprod child, vvprod with a left mvprod and a right vmprod child; `sync` additionally
needs the child's current row/column/k index to equal the parent's. So the attention chain
`((Q @ K_t) @ V) @ wO` with vmprod everywhere and K_t, V static plays as one fused chain: each
row goes from the input to the output in one step.

Where we go beyond mm: a root (or chain of roots) with alg "none" does not stop its animated
subtrees from playing (mm would play nothing); they start together at step 0. mm restarts the
sweep forever; ours ends with one extra global step in which everything is complete.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .evaluate import apply_epilogue, pointwise_part
from .plan import CubePlan, ScenePlan
from .spec import AnimSpec

ANIMATED = ("dotprod (row major)", "dotprod (col major)", "axpy", "vmprod", "mvprod", "vvprod")
ACCUMULATING = ("vvprod", "axpy")

# What a fused parent needs from a child (mm's alg_join); "none" also satisfies it.
_JOINS = {"vmprod": ("vmprod", None), "mvprod": (None, "mvprod"), "vvprod": ("mvprod", "vmprod")}

DEFAULT_FPS = 24


@dataclass(frozen=True)
class Axis:
    """One of a matmul's axes (i, k or j) in a sweep.

    n cells in blocks of `size` (`blocks` of them, the last maybe short). A swept axis has one
    index per block in flight: block * size + (t // div) % mod (dropped where >= n); an
    unswept axis has all n indices in flight.
    """
    n: int
    size: int
    blocks: int
    sweep: bool = False
    div: int = 1
    mod: int = 1

    def local(self, t: int) -> int:
        return (t // self.div) % self.mod

    def indices(self, t: int) -> np.ndarray:
        if not self.sweep:
            return np.arange(self.n)
        idx = np.arange(self.blocks) * self.size + self.local(t)
        return idx[idx < self.n]

    @property
    def in_flight(self) -> int:
        """Points a slice spans along this axis (before dropping a short block's overrun)."""
        return self.blocks if self.sweep else self.n

    def is_current(self, index: np.ndarray, t: int) -> np.ndarray:
        """Whether each index is in flight at local step t."""
        index = np.asarray(index)
        if not self.sweep:
            return np.ones(index.shape, bool)
        return index % self.size == self.local(t)


def _blocks(n: int, size: int) -> int:
    return max(1, math.ceil(n / max(1, size)))


@dataclass
class MatmulSweep:
    """One matmul's own sweep: slices, written cells, partial sums and highlights per local
    step. Indices are the matmul's (i rows of the result, k the contraction, j columns)."""
    key: str                  # the result matrix's key (plan), also the cube's key
    name: str
    path: str
    alg: str
    left: str                 # operand keys
    right: str
    epilogue: str
    i: Axis
    k: Axis
    j: Axis
    steps: int                # T
    row_coef: int             # a result cell (i, j) is written at local step
    col_coef: int             #   (i % si) * row_coef + (j % sj) * col_coef
    left_hl: tuple[str | None, str | None] = (None, None)    # axis highlighting L's rows/cols
    right_hl: tuple[str | None, str | None] = (None, None)   # ... R's rows/cols

    @property
    def rows(self) -> int:
        return self.i.n

    @property
    def cols(self) -> int:
        return self.j.n

    @property
    def depth(self) -> int:
        return self.k.n

    @property
    def accumulates(self) -> bool:
        """vvprod and axpy add products into the result: it shows partial sums."""
        return self.alg in ACCUMULATING

    @property
    def k_planes(self) -> bool:
        """With k blocks > 1 the writing algorithms show each k block's partial sums as a
        plane of its own (vvprod/axpy add all blocks into the one result instead)."""
        return self.k.blocks > 1 and not self.accumulates

    def axis(self, name: str) -> Axis:
        return {"i": self.i, "k": self.k, "j": self.j}[name]

    def active(self, t: int) -> bool:
        return 0 <= t < self.steps

    # --- products in flight --------------------------------------------------------------

    def slice(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i, k, j) index sets in flight at local step t; the products are their cartesian
        product. Empty outside 0 <= t < steps."""
        if not self.active(t):
            e = np.zeros(0, int)
            return e, e, e
        return self.i.indices(t), self.k.indices(t), self.j.indices(t)

    def products(self, t: int, left: np.ndarray, right: np.ndarray):
        """Flat (i, k, j, value) of every product in flight; value = L[i,k] * R[k,j] in float32
        (what the scene computes)."""
        si, sk, sj = self.slice(t)
        i, k, j = (a.ravel() for a in np.meshgrid(si, sk, sj, indexing="ij"))
        left = np.asarray(left, np.float32).reshape(self.rows, self.depth)
        right = np.asarray(right, np.float32).reshape(self.depth, self.cols)
        return i, k, j, (left[i, k] * right[k, j]).astype(np.float32)

    def product_count(self) -> int:
        """Points the scene allocates for a slice (the largest slice)."""
        return self.i.in_flight * self.k.in_flight * self.j.in_flight

    # --- result cells ----------------------------------------------------------------------

    def write_step(self) -> np.ndarray:
        """(rows, cols) local step at which each result cell is (first) written."""
        i = np.arange(self.rows)[:, None] % self.i.size
        j = np.arange(self.cols)[None, :] % self.j.size
        return i * self.row_coef + j * self.col_coef

    def written(self, t: int) -> np.ndarray:
        """(rows, cols) bool: cells shown at local step t (partial sums count as shown)."""
        if t < 0:
            return np.zeros((self.rows, self.cols), bool)
        if t >= self.steps:
            return np.ones((self.rows, self.cols), bool)
        return self.write_step() <= t

    def k_count(self, t: int) -> np.ndarray:
        """(rows, cols): how many local k offsets each cell's partial sum holds at step t (an
        accumulating sweep adds k offsets 0 .. count-1 of every k block)."""
        if t >= self.steps:
            return np.full((self.rows, self.cols), self.k.size)
        return np.clip(t - self.write_step() + 1, 0, self.k.size)

    def summed_k(self, t: int) -> np.ndarray:
        """(rows, cols, depth) bool: which k each cell's partial sum includes at step t."""
        k_local = np.arange(self.depth) % self.k.size
        return k_local[None, None, :] < self.k_count(t)[:, :, None]

    def partial(self, t: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """(rows, cols) float64 partial sums at step t, pointwise part of the epilogue applied
        (as mm shows them). Reference implementation for tests: (rows*cols*depth) memory."""
        left = np.asarray(left, np.float64).reshape(self.rows, self.depth)
        right = np.asarray(right, np.float64).reshape(self.depth, self.cols)
        mask = self.summed_k(t)
        with np.errstate(all="ignore"):
            raw = np.einsum("ik,kj,ijk->ij", left, right, mask.astype(np.float64))
            return apply_epilogue(raw, pointwise_part(self.epilogue), self.depth)

    def block_sums(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """(k blocks, rows, cols) float64: each k block's sum, pointwise epilogue applied (the
        k-block planes of writing algorithms)."""
        left = np.asarray(left, np.float64).reshape(self.rows, self.depth)
        right = np.asarray(right, np.float64).reshape(self.depth, self.cols)
        out = np.empty((self.k.blocks, self.rows, self.cols))
        with np.errstate(all="ignore"):
            for b in range(self.k.blocks):     # one matmul per block, not per cell
                ks = slice(b * self.k.size, min((b + 1) * self.k.size, self.depth))
                out[b] = left[:, ks] @ right[ks, :]
            return apply_epilogue(out, pointwise_part(self.epilogue), self.depth)

    # --- highlights --------------------------------------------------------------------------

    def _highlight(self, axes, t: int, shape) -> np.ndarray:
        mask = np.zeros(shape, bool)
        if not self.active(t) or axes == (None, None):
            return mask
        rows = np.ones(shape[0], bool) if axes[0] is None else \
            self.axis(axes[0]).is_current(np.arange(shape[0]), t)
        cols = np.ones(shape[1], bool) if axes[1] is None else \
            self.axis(axes[1]).is_current(np.arange(shape[1]), t)
        return rows[:, None] & cols[None, :]

    def left_highlight(self, t: int) -> np.ndarray:
        """(rows, depth) bool: left operand cells brightened at step t."""
        return self._highlight(self.left_hl, t, (self.rows, self.depth))

    def right_highlight(self, t: int) -> np.ndarray:
        """(depth, cols) bool: right operand cells brightened at step t."""
        return self._highlight(self.right_hl, t, (self.depth, self.cols))

    # --- mm's fusion index -------------------------------------------------------------------

    def index(self, t: int) -> int:
        """mm's getIndex(): the row (vmprod, dotprod row), column (mvprod, dotprod col) or
        local k (vvprod, axpy) being worked on; -1 before the start."""
        if t < 0:
            return -1
        if self.alg in ("vmprod", "mvprod", "vvprod"):
            return t
        if self.alg == "dotprod (row major)":
            return t // self.j.size
        if self.alg == "dotprod (col major)":
            return t // self.i.size
        return t % self.k.size      # axpy: k cycles within each column


def matmul_sweep(cube: CubePlan, alg: str | None = None) -> MatmulSweep:
    """The sweep of one cube for its algorithm (or `alg`)."""
    alg = alg or cube.alg
    if alg not in ANIMATED:
        raise ValueError(f"{cube.name!r}: {alg!r} is not an animation algorithm")
    si, sk, sj = int(cube.block_i), int(cube.block_k), int(cube.block_j)
    H, D, W = int(cube.rows), int(cube.depth), int(cube.cols)
    ai = Axis(H, si, _blocks(H, si))
    ak = Axis(D, sk, _blocks(D, sk))
    aj = Axis(W, sj, _blocks(W, sj))
    sweep = dict(sweep=True)
    if alg == "vmprod":
        ai = Axis(H, si, ai.blocks, div=1, mod=si, **sweep)
        steps, coefs, lhl, rhl = si, (1, 0), ("i", None), (None, None)
    elif alg == "mvprod":
        aj = Axis(W, sj, aj.blocks, div=1, mod=sj, **sweep)
        steps, coefs, lhl, rhl = sj, (0, 1), (None, None), (None, "j")
    elif alg == "vvprod":
        ak = Axis(D, sk, ak.blocks, div=1, mod=sk, **sweep)
        steps, coefs, lhl, rhl = sk, (0, 0), (None, "k"), ("k", None)
    elif alg == "dotprod (row major)":
        ai = Axis(H, si, ai.blocks, div=sj, mod=si, **sweep)
        aj = Axis(W, sj, aj.blocks, div=1, mod=sj, **sweep)
        steps, coefs, lhl, rhl = si * sj, (sj, 1), ("i", None), (None, "j")
    elif alg == "dotprod (col major)":
        ai = Axis(H, si, ai.blocks, div=1, mod=si, **sweep)
        aj = Axis(W, sj, aj.blocks, div=si, mod=sj, **sweep)
        steps, coefs, lhl, rhl = si * sj, (1, si), ("i", None), (None, "j")
    else:  # axpy
        ak = Axis(D, sk, ak.blocks, div=1, mod=sk, **sweep)
        aj = Axis(W, sj, aj.blocks, div=sk, mod=sj, **sweep)
        steps, coefs, lhl, rhl = sk * sj, (0, sk), (None, "k"), ("k", "j")
    return MatmulSweep(key=cube.key, name=cube.name, path=cube.path, alg=alg, left=cube.left,
                       right=cube.right, epilogue=cube.epilogue, i=ai, k=ak, j=aj, steps=steps,
                       row_coef=coefs[0], col_coef=coefs[1], left_hl=lhl, right_hl=rhl)


# --- the expression: mm's bump protocol ------------------------------------------------------

class _Node:
    """One animated matmul while simulating mm's protocol (children, done flags, fusion)."""

    def __init__(self, sweep: MatmulSweep, left: "_Node | None", right: "_Node | None"):
        self.sweep = sweep
        self.left = left
        self.right = right
        self.t = -1
        self.left_done = self.right_done = True
        self.done = False

    def start(self) -> None:
        self.t = -1
        self.done = False
        self.left_done = self.left is None
        self.right_done = self.right is None
        for child in (self.left, self.right):
            if child is not None:
                child.start()

    def index(self) -> int:
        return self.sweep.index(self.t)

    def join(self, fuse: str) -> str:
        """mm's alg_join: the algorithm this subtree runs as one, or "mixed"."""
        def side(child, done):
            if child is None or done:
                return "none"
            if fuse == "async" or child.index() == self.index():
                return child.join(fuse)
            return "mixed"

        def fits(child_alg, wanted):      # mm's or_none(child, wanted)
            return child_alg == "none" or (wanted is not None and child_alg == wanted)

        lalg = side(self.left, self.left_done)
        ralg = side(self.right, self.right_done)
        alg = self.sweep.alg
        want_left, want_right = _JOINS.get(alg, (None, None))
        return alg if fits(lalg, want_left) and fits(ralg, want_right) else "mixed"

    def bump(self, fuse: str) -> None:
        go = (self.left_done and self.right_done) or (fuse != "none" and self.join(fuse) != "mixed")
        if not self.left_done:
            self.left.bump(fuse)
            self.left_done = self.left.done
        if not self.right_done:
            self.right.bump(fuse)
            self.right_done = self.right.done
        if go and not self.done:
            self.t += 1
            self.done = self.t >= self.sweep.steps

    def walk(self):
        for child in (self.left, self.right):
            if child is not None:
                yield from child.walk()
        yield self


# --- timing --------------------------------------------------------------------------------

def frames_per_step(anim: AnimSpec, fps: float, n_steps: int) -> float:
    """Frames each global step lasts.

    anim.frames_per_step if set; else anim.seconds > 0 fits the whole sweep (all n_steps,
    the final complete step included) into that many seconds (may be fractional: steps then
    last alternately floor/ceil frames); else mm's speed. mm advances one step when more than
    1000/speed ms have passed, checked once per display frame, so speed is (at most) steps
    per second; we keep that: round(fps / speed) frames per step, at least 1 (speed 12 at
    24 fps: 2 frames a step; speeds at or above the frame rate: every frame a step).
    """
    if anim.frames_per_step and anim.frames_per_step > 0:
        return float(anim.frames_per_step)
    if anim.seconds and anim.seconds > 0:
        return anim.seconds * fps / max(1, n_steps)
    return float(max(1, round(fps / max(anim.speed, 1e-6))))


@dataclass
class Schedule:
    """The whole animation: every animated matmul's local step at every global step, and
    when the global steps play."""
    sweeps: dict[str, MatmulSweep]              # key -> sweep, leaves to root
    phase: dict[str, np.ndarray]                # key -> (n_steps,) int local step
    n_steps: int
    fuse: str = "none"
    hide_inputs: bool = False
    spin: float = 0.0                           # seconds per camera turn (0: none)
    fps: float = DEFAULT_FPS
    frame_start: int = 1
    step_frames: float = 1.0                    # frames per global step
    hidden: list[str] = field(default_factory=list)   # leaf keys hidden during the sweep

    @property
    def empty(self) -> bool:
        return not self.sweeps

    def step_frame(self, step) -> np.ndarray:
        """First frame (maybe fractional) of global step(s)."""
        return self.frame_start + np.asarray(step, np.float64) * self.step_frames

    @property
    def frame_end(self) -> int:
        if self.empty:
            return self.frame_start
        last_key = math.ceil(float(self.step_frame(self.n_steps - 1)))
        return max(self.frame_start + math.ceil(self.n_steps * self.step_frames - 1e-9) - 1,
                   last_key)

    @property
    def frame_range(self) -> tuple[int, int]:
        return self.frame_start, self.frame_end

    def step_at(self, frame: float) -> int:
        """The global step showing at a frame."""
        s = math.floor((frame - self.frame_start) / self.step_frames + 1e-9)
        return min(max(s, 0), max(self.n_steps - 1, 0))

    def local(self, key: str, step: int) -> int:
        return int(self.phase[key][step])

    def keys(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(frames, values) of the constant keyframes carrying matmul `key`'s local step: one
        key at the first frame and one wherever the step changes."""
        ph = self.phase[key]
        change = np.flatnonzero(np.diff(ph)) + 1
        steps = np.concatenate([[0], change])
        return self.step_frame(steps), ph[steps].astype(np.float64)

    def in_flight(self, step: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every matmul's (i, k, j) slice at a global step."""
        return {k: s.slice(self.local(k, step)) for k, s in self.sweeps.items()}


def _tree_nodes(plan: ScenePlan) -> tuple[list[_Node], dict[str, MatmulSweep]]:
    """Animated matmuls as protocol nodes. Returns the roots that play from step 0."""
    cubes = {c.path: c for c in plan.cubes}
    sweeps: dict[str, MatmulSweep] = {}

    def node(path: str) -> _Node | None:
        cube = cubes.get(path)
        if cube is None or cube.alg not in ANIMATED:
            return None            # a leaf or a static matmul: complete from the start (mm)
        left = node(path + "l")
        right = node(path + "r")
        sw = matmul_sweep(cube)
        sweeps[cube.key] = sw
        return _Node(sw, left, right)

    roots: list[_Node] = []

    def top(path: str) -> None:
        """Static ("none") matmuls at the top pass their animated subtrees through."""
        cube = cubes.get(path)
        if cube is None:
            return
        if cube.alg in ANIMATED:
            roots.append(node(path))
        else:
            top(path + "l")
            top(path + "r")

    top("")
    return roots, sweeps


MAX_STEPS = 10_000_000


def make_schedule(plan: ScenePlan, anim: AnimSpec, *, fps: float = DEFAULT_FPS,
                  frame_start: int = 1) -> Schedule:
    """Simulate mm's protocol over the plan's cubes (their `alg`, inherit already resolved)
    with anim.fuse, and time it at `fps`."""
    roots, sweeps = _tree_nodes(plan)
    fuse = anim.fuse
    history: dict[str, list[int]] = {k: [] for k in sweeps}
    nodes = [n for r in roots for n in r.walk()]
    for r in roots:
        r.start()
    n_steps = 0
    # Global step s: every root is bumped once (mm's tick), then every local step recorded.
    # The last recorded step is the one in which every root has completed.
    while roots and not all(r.done for r in roots):
        for r in roots:
            if not r.done:
                r.bump(fuse)
        for n in nodes:
            history[n.sweep.key].append(min(n.t, n.sweep.steps))
        n_steps += 1
        if n_steps > MAX_STEPS:   # pragma: no cover - the protocol always terminates
            raise RuntimeError("sweep schedule does not terminate")
    order = [c.key for c in plan.cubes if c.key in sweeps]
    order = sorted(order, key=lambda k: -len(sweeps[k].path))   # leaves to root
    phase = {k: np.asarray(history[k], np.int64) for k in order}
    sched = Schedule(sweeps={k: sweeps[k] for k in order}, phase=phase, n_steps=n_steps,
                     fuse=fuse, hide_inputs=anim.hide_inputs, spin=anim.spin, fps=fps,
                     frame_start=frame_start)
    sched.step_frames = frames_per_step(anim, fps, n_steps) if n_steps else 1.0
    if anim.hide_inputs:
        results = {m.key for m in plan.matrices if m.role == "result"}
        hidden = []
        for sw in sched.sweeps.values():
            hidden += [k for k in (sw.left, sw.right) if k not in results and k not in hidden]
        sched.hidden = hidden
    return sched


def product_range(left: np.ndarray, right: np.ndarray) -> float:
    """Largest |L[i,k] * R[k,j]| over a matmul's products, without forming them:
    max over k of max_i |L[i,k]| * max_j |R[k,j]| (NaN and inf ignored)."""
    with np.errstate(all="ignore"):
        la = np.where(np.isfinite(left), np.abs(left), 0).max(axis=0)
        ra = np.where(np.isfinite(right), np.abs(right), 0).max(axis=1)
    return float((la * ra).max()) if la.size and ra.size else 0.0
