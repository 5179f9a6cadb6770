"""Cells: one mesh object per matrix, one vertex per element (row-major, index = i*cols + j),
with point attributes `value` (exact), `color` (linear RGBA) and `size` (edge length, 0 = not
drawn). The `mm_cells` Geometry Nodes modifier turns the drawn points into a point cloud of
spheres (the default), or instances a cube on every drawn point (nodes.py).

Vertex positions are the plan's positions in world space; the object keeps an identity
transform so point coordinates read in the spreadsheet are scene coordinates.
"""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..core.plan import MatrixPlan
from . import nodes

ATTR_VALUE = "value"
ATTR_COLOR = "color"
ATTR_SIZE = "size"


def _as(array, dtype, shape) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    if out.shape != shape:
        raise ValueError(f"expected shape {shape}, got {out.shape}")
    return out


def fill_mesh(mesh, positions, values, colors, sizes) -> None:
    """Write points and their attributes into an empty mesh (foreach_set, no Python loops)."""
    n = len(values)
    positions = _as(positions, np.float32, (n, 3))
    mesh.vertices.add(n)
    mesh.vertices.foreach_set("co", positions.ravel())
    attrs = mesh.attributes
    attrs.new(ATTR_VALUE, "FLOAT", "POINT").data.foreach_set(
        "value", _as(values, np.float32, (n,)))
    attrs.new(ATTR_COLOR, "FLOAT_COLOR", "POINT").data.foreach_set(
        "color", _as(colors, np.float32, (n, 4)).ravel())
    attrs.new(ATTR_SIZE, "FLOAT", "POINT").data.foreach_set(
        "value", _as(sizes, np.float32, (n,)))
    mesh.update()


def face_rotation(matrix: MatrixPlan) -> tuple[float, float, float]:
    """Euler XYZ turning a cell's local X/Z onto the face's column axis / normal."""
    z = np.asarray(matrix.normal, dtype=np.float64)
    x = np.asarray(matrix.col_axis, dtype=np.float64)
    if not np.isfinite(z).all() or np.linalg.norm(z) < 1e-9:
        return (0.0, 0.0, 0.0)
    z = z / np.linalg.norm(z)
    x = x - z * np.dot(x, z)
    if np.linalg.norm(x) < 1e-9:   # degenerate: any perpendicular will do
        x = np.cross(z, (1.0, 0.0, 0.0) if abs(z[0]) < 0.9 else (0.0, 1.0, 0.0))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    rot = Matrix(np.stack([x, y, z], axis=1).tolist())
    euler = rot.to_euler("XYZ")
    return (euler.x, euler.y, euler.z)


def cells_object(matrix: MatrixPlan, name: str, *, material, shape: str = "sphere",
                 collection=None):
    """Create the matrix's mesh and object, with the instancer modifier attached."""
    mesh = bpy.data.meshes.new(name)
    try:
        fill_mesh(mesh, matrix.positions, matrix.values, matrix.colors, matrix.sizes)
    except Exception:
        bpy.data.meshes.remove(mesh)
        raise
    obj = bpy.data.objects.new(name, mesh)
    if collection is not None:
        collection.objects.link(obj)
    nodes.add_modifier(obj, nodes.cells_group(), nodes.CELLS_MODIFIER, nodes.CELLS_INPUTS, {
        "Cell Scale": 1.0,
        "Shape": nodes.SHAPES.index(shape),
        "Cell Rotation": face_rotation(matrix),
        "Material": material,
    })
    # Workbench and the viewport's solid mode show this colour; Cycles/EEVEE use the node tree.
    obj.data.materials.append(material)
    # Spheres are not instances: there, the material's INSTANCER lookup of `color` falls back
    # to the object's colour, which must add nothing to the point cloud's `cell_color`.
    obj.color = (0.0, 0.0, 0.0, 1.0)
    return obj


def read_values(obj) -> np.ndarray:
    """The exact `value` attribute of a cells object (float32, row-major)."""
    mesh = obj.data
    out = np.empty(len(mesh.vertices), dtype=np.float32)
    mesh.attributes[ATTR_VALUE].data.foreach_get("value", out)
    return out


def read_positions(obj) -> np.ndarray:
    mesh = obj.data
    out = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", out)
    return out.reshape(-1, 3)
