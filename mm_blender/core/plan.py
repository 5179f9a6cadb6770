"""The scene plan: pure data that `scene/` turns into Blender objects (no bpy here).

Coordinates are Blender's (Z up, metres = one cell pitch). mm's frame (x = j, y = i down,
z = k into the screen) maps to Blender as X = x, Y = z, Z = -y, so the result face of the
root is seen from the front (-Y) with i running downward.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MatrixPlan:
    """One matrix drawn as one point per element, in row-major order (index = i * cols + j)."""
    key: str                 # unique object name within the build
    name: str                # the matrix's name in the expression (mm_name)
    role: str                # "leaf" | "result"
    rows: int
    cols: int
    path: str                # tree path of the node ("" root, "l", "lr", ...)
    positions: np.ndarray    # (N, 3) float32, cell centres
    values: np.ndarray       # (N,) float32, exact values
    colors: np.ndarray       # (N, 4) float32 RGBA, linear (scene-referred) colour
    sizes: np.ndarray        # (N,) float32 cell edge length (0: not drawn, as mm hides zero)
    normal: np.ndarray       # (3,) unit normal of the face the matrix lies in
    row_axis: np.ndarray     # (3,) unit direction of increasing i on the face
    col_axis: np.ndarray     # (3,) unit direction of increasing j on the face
    left: str = ""           # results: key of the left operand's object
    right: str = ""          # results: key of the right operand's object
    epilogue: str = ""       # results: the matmul's epilogue
    matmul: str = ""         # results: name of the matmul (== name)


@dataclass
class CubePlan:
    """A matmul's cube: an oriented box (origin + unit axes * extent) and its partition blocks.

    `axes` rows are unit vectors along the cube's local x (j), y (i) and z (depth) edges;
    `extent` their lengths. `ranges_*` are (n_blocks, 2) [start, end] distances along each
    axis of every block's slab, so outlines can show the partition. Interior products use
    `interior_point`, the one affine map (plus block gaps) the layout invariant is about.
    """
    key: str                 # the result matrix's key
    name: str
    path: str
    origin: np.ndarray       # (3,)
    axes: np.ndarray         # (3, 3)
    extent: np.ndarray       # (3,)
    ranges_j: np.ndarray
    ranges_i: np.ndarray
    ranges_k: np.ndarray
    base: np.ndarray         # interior point of (i, j, k) = (0, 0, 0) before gaps
    di: np.ndarray           # step per i
    dj: np.ndarray           # step per j
    dk: np.ndarray           # step per k
    block_i: int
    block_j: int
    block_k: int
    gap: float
    rows: int                # i extent (cells)
    cols: int                # j extent
    depth: int               # k extent
    left: str = ""           # keys of the operand / result matrices
    right: str = ""
    result: str = ""
    alg: str = "none"        # the matmul's animation algorithm (inherit resolved)
    epilogue: str = "none"
    placement: tuple = ()    # (polarity, left, right, result) placement names

    def interior_point(self, i, j, k) -> np.ndarray:
        """Vectorised position of product (i, k, j) inside the cube; shape (..., 3)."""
        i = np.asarray(i)
        j = np.asarray(j)
        k = np.asarray(k)
        ii = i + (i // self.block_i) * self.gap
        jj = j + (j // self.block_j) * self.gap
        kk = k + (k // self.block_k) * self.gap
        return (self.base + ii[..., None] * self.di + jj[..., None] * self.dj
                + kk[..., None] * self.dk).astype(np.float32)


@dataclass
class TrianglePlan:
    """Flat translucent triangles (flow guides). vertices (M, 3, 3); colors (M, 4) RGBA."""
    key: str
    vertices: np.ndarray
    colors: np.ndarray


@dataclass
class LinePlan:
    """Line segments (row guides, outlines). segments (M, 2, 3); one colour."""
    key: str
    segments: np.ndarray
    color: tuple[float, float, float, float]
    thickness: float = 0.05
    # row guides: which matrix each run of segments belongs to, in order: ((key, count), ...)
    owners: tuple = ()


@dataclass
class LabelPlan:
    """A text label facing the camera: matrix names and I=/K=/J= shape labels."""
    key: str
    text: str
    position: np.ndarray     # (3,) centre of the text
    size: float              # text height in scene units
    kind: str                # "name" | "shape"
    # For labels drawn on a face (matrix names, as mm draws them): the face's column and row
    # directions; the scene lays the text in that plane, on the side the camera sees.
    # Empty: the text faces the camera.
    face_axes: tuple = ()
    # Shape labels: the face edge they run along, as mm draws them: (start, end, outward),
    # Blender coordinates, outward a unit vector in the face's plane pointing off the face.
    # The scene turns the text along the edge on screen, beside it on the outer side.
    edge: tuple = ()
    matrix: str = ""         # key of the matrix the label belongs to


@dataclass
class LensPlan:
    """mm's magnifier lens: cells within `radius` of `position` show their values."""
    position: np.ndarray     # (3,) where the lens starts (a cell of the root result)
    radius: float            # in cells
    text_size: float         # height of the numbers' font, in cells
    decimals: int            # digits after the point
    spread: float = 1.0      # the loupe: numbers at centre + (cell - centre) * spread


@dataclass
class SpotlightPlan:
    """mm's spotlight, set: result cell (row, col) of one matmul, its left row, right column
    and (interior) its k products stand out; every other cell is dimmed to `dim`."""
    result: str              # key of the result matrix
    left: str
    right: str
    row: int
    col: int
    position: np.ndarray     # (3,) centre of the result cell
    dim: float               # brightness of the rest (0..1)
    interior: bool           # draw the k products inside the cube
    products_absmin: float = 0.0    # the products' colour range (as the sweep's)
    products_absmax: float = 1.0
    table_colors: np.ndarray | None = None   # the colour rule as a table (overlays.colour_table)
    table_sizes: np.ndarray | None = None


@dataclass
class AxesPlan:
    """mm's i, j, k axis arrows with their letters, from the root cube's corner."""
    origin: np.ndarray       # (3,)
    directions: np.ndarray   # (3, 3) unit vectors of i, j, k
    length: float
    letters: tuple = ("i", "j", "k")
    colors: tuple = ()       # RGBA (linear) per axis


@dataclass
class ScenePlan:
    name: str                # preset name (the collection's name)
    matrices: list[MatrixPlan]
    cubes: list[CubePlan]
    triangles: list[TrianglePlan]
    lines: list[LinePlan]
    labels: list[LabelPlan]
    bounds_min: np.ndarray   # (3,) of everything drawn
    bounds_max: np.ndarray
    cell_shape: str = "sphere"
    background: str = "dark"
    view: str = "mm"
    title: str = ""          # the expression
    show_title: bool = False  # draw the expression at the top of the view (as mm does)
    camera_direction: tuple = ()   # preset's own "mm" view direction (target -> camera)
    lens: LensPlan | None = None
    spotlight: SpotlightPlan | None = None
    axes: AxesPlan | None = None

    def cell_count(self) -> int:
        return int(sum(m.rows * m.cols for m in self.matrices))

    def matrix(self, key: str) -> MatrixPlan:
        for m in self.matrices:
            if m.key == key:
                return m
        raise KeyError(key)
