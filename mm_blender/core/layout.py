"""Pure geometry: where every cell of every matrix sits, and every matmul's cube.

Follows mm's construction: each matmul is a group whose result face lies at z = 0 (front) or
z = depth (back) of its cube; the left argument (a matrix or a whole child matmul) is turned
about y and the right argument about x, folded by the polarity, and placed by the left/right
placement and scatter. Child placements come from the parent through the layout scheme, so a
child's result face is its parent's argument face. Transforms compose down the tree; cell
positions are computed per matrix with numpy (no per-cell Python).

Frames: mm's local frame has x = j, y = i (down), z = k. The final positions are in Blender's
frame (X = x, Y = z, Z = -y), centred on the origin.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import expr as exprmod
from .spec import (LEFT_PLACEMENTS, POLARITIES, RESULT_PLACEMENTS, RIGHT_PLACEMENTS,
                   Placement, Spec)

# mm frame -> Blender frame
TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


# --- layout schemes (mm's rules, on booleans: negative/left/top/front are False) ----------

def _to_bools(p: Placement):
    return (POLARITIES.index(p.polarity) == 1, LEFT_PLACEMENTS.index(p.left_placement) == 1,
            RIGHT_PLACEMENTS.index(p.right_placement) == 1,
            RESULT_PLACEMENTS.index(p.result_placement) == 1)


def _from_bools(pol, left, right, res) -> Placement:
    return Placement(POLARITIES[int(pol)], LEFT_PLACEMENTS[int(left)],
                     RIGHT_PLACEMENTS[int(right)], RESULT_PLACEMENTS[int(res)])


def child_placement(parent: Placement, scheme: str, is_left: bool) -> Placement:
    """A child matmul's placement derived from its parent's by the scheme (as mm does)."""
    pol, left, right, res = _to_bools(parent)
    if scheme == "wheel":
        return _from_bools(pol, left, right, res)
    if scheme == "zigzag":
        return _from_bools(not pol,
                           (pol != res) if is_left else left,
                           right if is_left else (pol != res),
                           pol == (left if is_left else right))
    # blocks (also the fallback for custom nodes without their own settings)
    return _from_bools(not pol,
                       (pol != res) if is_left else (not left),
                       (not right) if is_left else (pol != res),
                       pol == (left if is_left else right))


# --- partition blocks ----------------------------------------------------------------------

def block_info(n_cells: int, n_blocks: int) -> tuple[int, int]:
    """(block size, number of non-empty blocks) for n_cells split into n_blocks (mm's rule)."""
    n = max(1, min(n_blocks, n_cells))
    size = math.ceil(n_cells / n)
    return size, min(n, math.ceil(n_cells / size))


def displayed(n_cells: int, n_blocks: int, gap: float) -> float:
    """Length occupied by n_cells including the gaps between blocks."""
    size, n = block_info(n_cells, n_blocks)
    return n_cells + gap * (n - 1)


def block_offsets(n_cells: int, n_blocks: int, gap: float) -> np.ndarray:
    """Displayed coordinate of every index: index + (its block number) * gap."""
    size, _ = block_info(n_cells, n_blocks)
    idx = np.arange(n_cells)
    return idx + (idx // size) * gap


def block_ranges(n_cells: int, n_blocks: int, gap: float) -> np.ndarray:
    """(n, 2) [first, last] displayed coordinate of each block."""
    size, n = block_info(n_cells, n_blocks)
    starts = np.arange(n) * size
    ends = np.minimum(starts + size, n_cells) - 1
    return np.stack([starts + np.arange(n) * gap, ends + np.arange(n) * gap], axis=1).astype(float)


# --- transforms ----------------------------------------------------------------------------

def _rot_x(theta):
    c, s = round(math.cos(theta)), round(math.sin(theta))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=float)


def _rot_y(theta):
    c, s = round(math.cos(theta)), round(math.sin(theta))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=float)


@dataclass
class Affine:
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def then(self, local: "Affine") -> "Affine":
        """self (parent world) composed with a child's local transform."""
        return Affine(self.R @ local.R, self.R @ local.t + self.t)

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return pts @ self.R.T + self.t

    def vec(self, v) -> np.ndarray:
        return self.R @ np.asarray(v, dtype=float)


# --- the layout tree -----------------------------------------------------------------------

@dataclass
class MatLayout:
    """One drawn matrix: a leaf occurrence or a matmul result."""
    node: exprmod.Node
    role: str                  # leaf | result
    path: str                  # tree path of the node
    rows: int
    cols: int
    blocks_i: int
    blocks_j: int
    world: Affine              # mm-frame transform of the matrix's local frame
    gap: float
    # shape labels: (name, place) for the row and column dimension, or None
    shape_info: tuple | None = None

    def extent(self) -> np.ndarray:
        return np.array([displayed(self.cols, self.blocks_j, self.gap) + 2 * self.gap - 1,
                         displayed(self.rows, self.blocks_i, self.gap) + 2 * self.gap - 1, 0.0])

    def local_positions(self) -> np.ndarray:
        """(rows*cols, 3) positions in the matrix's own frame, row-major."""
        xs = self.gap + block_offsets(self.cols, self.blocks_j, self.gap)
        ys = self.gap + block_offsets(self.rows, self.blocks_i, self.gap)
        pts = np.zeros((self.rows, self.cols, 3))
        pts[:, :, 0] = xs[None, :]
        pts[:, :, 1] = ys[:, None]
        return pts.reshape(-1, 3)

    def mm_positions(self) -> np.ndarray:
        return self.world.apply(self.local_positions())


@dataclass
class CubeLayout:
    node: exprmod.MatMul
    path: str
    rows: int                  # H (i)
    depth: int                 # D (k)
    cols: int                  # W (j)
    blocks: tuple[int, int, int]   # i, j, k
    placement: Placement
    world: Affine
    gap: float
    left_scatter: float
    right_scatter: float
    alg: str                   # resolved (inherit replaced)

    def extent(self) -> np.ndarray:
        bi, bj, bk = self.blocks
        g = self.gap
        return np.array([displayed(self.cols, bj, g) + 2 * g - 1,
                         displayed(self.rows, bi, g) + 2 * g - 1,
                         displayed(self.depth, bk, g) + 2 * g - 1])

    @property
    def positive(self) -> bool:
        return self.placement.polarity == "positive"

    def local_interior(self, i, j, k) -> np.ndarray:
        """Interior point of product (i, k, j) in the cube's local mm frame (vectorised)."""
        bi, bj, bk = self.blocks
        g = self.gap
        i, j, k = np.asarray(i), np.asarray(j), np.asarray(k)
        si, _ = block_info(self.rows, bi)
        sj, _ = block_info(self.cols, bj)
        sk, _ = block_info(self.depth, bk)
        x = g + j + (j // sj) * g
        y = g + i + (i // si) * g
        kk = k + (k // sk) * g
        z = g + kk if self.positive else self.extent()[2] - g - kk
        return np.stack(np.broadcast_arrays(x, y, z), axis=-1).astype(float)

    def mm_interior(self, i, j, k) -> np.ndarray:
        return self.world.apply(self.local_interior(i, j, k))


@dataclass
class Layout:
    spec: Spec
    mats: list[MatLayout]
    cubes: list[CubeLayout]
    center: np.ndarray         # mm-frame point moved to the origin

    def to_blender(self, mm_points: np.ndarray) -> np.ndarray:
        return (np.asarray(mm_points) - self.center) @ TO_BLENDER.T

    def to_blender_vec(self, v) -> np.ndarray:
        return TO_BLENDER @ np.asarray(v, dtype=float)

    def mat(self, path: str, role: str) -> MatLayout:
        for m in self.mats:
            if m.path == path and m.role == role:
                return m
        raise KeyError((path, role))

    def cube(self, path: str) -> CubeLayout:
        for c in self.cubes:
            if c.path == path:
                return c
        raise KeyError(path)

    def positions(self, mat: MatLayout) -> np.ndarray:
        """Blender-frame (N, 3) float32 cell centres of one matrix (one affine per matrix:
        a row-major grid with block gaps, mapped by the composed transform)."""
        R = TO_BLENDER @ mat.world.R
        t = TO_BLENDER @ (mat.world.t - self.center)
        xs = (mat.gap + block_offsets(mat.cols, mat.blocks_j, mat.gap)).astype(np.float32)
        ys = (mat.gap + block_offsets(mat.rows, mat.blocks_i, mat.gap)).astype(np.float32)
        R32 = R.astype(np.float32)
        out = np.empty((mat.rows, mat.cols, 3), dtype=np.float32)
        out[...] = (t.astype(np.float32) + ys[:, None, None] * R32[:, 1])
        out += xs[None, :, None] * R32[:, 0]
        return out.reshape(-1, 3)

    def interior(self, cube: CubeLayout, i, j, k) -> np.ndarray:
        return self.to_blender(cube.mm_interior(i, j, k)).astype(np.float32)

    def cube_box(self, cube: CubeLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origin, unit axes (3x3 rows: local x, y, z), extent) in Blender's frame."""
        origin = self.to_blender(cube.world.apply(np.zeros((1, 3))))[0]
        axes = np.stack([self.to_blender_vec(cube.world.vec(e)) for e in np.eye(3)])
        return origin, axes, cube.extent()


def _count(node) -> int:
    return exprmod.count_matmuls(node) if isinstance(node, exprmod.MatMul) else 0


def compute_layout(spec: Spec) -> Layout:
    """Lay out the whole expression tree. Pure numpy; positions are computed on demand."""
    L = spec.layout
    g = float(L.gap)
    total = _count(spec.tree)
    mats: list[MatLayout] = []
    cubes: list[CubeLayout] = []

    def scatter(count: int) -> float:
        if count < L.molecule:
            return 0.0
        mult = count ** L.blast if L.blast >= 0 else (total - count) ** (-L.blast)
        return L.scatter * mult

    def placement_for(node, parent_place, is_left) -> Placement:
        if parent_place is None:
            return L.placement
        if L.scheme == "custom":
            own = spec.matmul(node).placement
            if own is not None:
                return own
            return child_placement(parent_place, "blocks", is_left)
        return child_placement(parent_place, L.scheme, is_left)

    def cube_extent_z(node, blocks) -> float:
        """Depth extent of a child matmul's cube (a leaf's is 0)."""
        if not isinstance(node, exprmod.MatMul):
            return 0.0
        d = spec.shape(node.left)[1]
        return displayed(d, blocks[2], g) + 2 * g - 1

    def visit(node: exprmod.MatMul, world: Affine, place: Placement,
              blocks: tuple[int, int, int], parent_alg: str, is_root: bool):
        H, D = spec.shape(node.left)
        W = spec.shape(node.right)[1]
        bi, bj, bk = blocks
        alg = spec.matmul(node).alg
        if alg == "inherit":
            alg = parent_alg
        ls = scatter(_count(node.left))
        rs = scatter(_count(node.right))
        cube = CubeLayout(node, node.path, H, D, W, blocks, place, world, g, ls, rs, alg)
        cubes.append(cube)
        ext = cube.extent()
        positive = place.polarity == "positive"
        res_front = place.result_placement == "front"
        left_left = place.left_placement == "left"
        right_top = place.right_placement == "top"

        # result face
        z_res = 0.0 if res_front else ext[2]
        shape_info = (("I", left_left), ("J", right_top)) if is_root else None
        mats.append(MatLayout(node, "result", node.path, H, W, bi, bj,
                              world.then(Affine(np.eye(3), np.array([0.0, 0.0, z_res]))), g,
                              shape_info))

        # left argument: i blocks from this matmul, j blocks = this matmul's k blocks
        left_blocks = (bi, bk, spec.matmul(node.left).k_blocks
                       if isinstance(node.left, exprmod.MatMul) else 1)
        lz = cube_extent_z(node.left, left_blocks)
        if positive:
            x = -ls if left_left else ext[0] + lz + ls
            local = Affine(_rot_y(-math.pi / 2), np.array([x, 0.0, 0.0]))
        else:
            x = -(lz + ls) if left_left else ext[0] + ls
            local = Affine(_rot_y(math.pi / 2), np.array([x, 0.0, ext[2]]))
        lworld = world.then(local)
        if isinstance(node.left, exprmod.MatMul):
            visit(node.left, lworld, placement_for(node.left, place, True), left_blocks, alg, False)
        else:
            info = (("I", res_front == positive), ("K", right_top))
            mats.append(MatLayout(node.left, "leaf", node.left.path, H, D, bi, bk, lworld, g, info))

        # right argument: i blocks = this matmul's k blocks, j blocks from this matmul
        right_blocks = (bk, bj, spec.matmul(node.right).k_blocks
                        if isinstance(node.right, exprmod.MatMul) else 1)
        rz = cube_extent_z(node.right, right_blocks)
        if positive:
            y = -rs if right_top else ext[1] + rz + rs
            local = Affine(_rot_x(math.pi / 2), np.array([0.0, y, 0.0]))
        else:
            y = -(rz + rs) if right_top else ext[1] + rs
            local = Affine(_rot_x(-math.pi / 2), np.array([0.0, y, ext[2]]))
        rworld = world.then(local)
        if isinstance(node.right, exprmod.MatMul):
            visit(node.right, rworld, placement_for(node.right, place, False), right_blocks,
                  alg, False)
        else:
            info = (("K", left_left), ("J", res_front == positive))
            mats.append(MatLayout(node.right, "leaf", node.right.path, D, W, bk, bj, rworld, g, info))

    visit(spec.tree, Affine(), L.placement, (spec.blocks.i, spec.blocks.j, spec.blocks.k),
          spec.anim.alg, True)

    # centre the bounding box of all cubes (as mm centres its scene)
    corners = []
    for c in cubes:
        e = c.extent()
        box = np.array([[x, y, z] for x in (0, e[0]) for y in (0, e[1]) for z in (0, e[2])])
        corners.append(c.world.apply(box))
    corners = np.concatenate(corners)
    center = (corners.min(axis=0) + corners.max(axis=0)) / 2
    # mats are in visiting order: each matmul's result, then its left and right arguments
    return Layout(spec, mats, cubes, center)
