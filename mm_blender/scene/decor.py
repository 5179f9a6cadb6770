"""Decorations: lines (the plan's LinePlans: cube and partition-block outlines, row guides),
flow-guide triangles and text labels. Few objects: all lines share one edge mesh drawn as
tubes by the `mm_lines` group, all triangles one mesh; labels are one text object each
(their count doesn't grow with the number of cells) and face the camera through a Copy
Rotation constraint.
"""
from __future__ import annotations

import bpy
from mathutils import Matrix
import numpy as np

from ..core.plan import LabelPlan, LinePlan, TrianglePlan
from . import nodes

# Colour attribute of line and triangle meshes. Not "color": Cycles does not find a mesh's
# generic attribute by that name (measured, 5.0.1), while the instancer's `color` works.
DECOR_COLOR = "decor_color"
# Lines thinner than this fraction of the scene's diagonal vanish between pixels.
MIN_THICKNESS_FRACTION = 0.0005   # about half a pixel at 1280 wide: faint, like mm's GL lines


def scene_scale(bounds_min, bounds_max) -> float:
    return float(np.linalg.norm(np.asarray(bounds_max, float) - np.asarray(bounds_min, float)))


def gather_lines(lines: list[LinePlan], scale: float):
    """All segments with per-segment colour and radius: (M,2,3), (M,4), (M,). Lines are
    kept at least MIN_THICKNESS_FRACTION of the scene's size thick so big scenes still show
    them."""
    floor = MIN_THICKNESS_FRACTION * scale
    segs, cols, radii = [], [], []
    for line in lines:
        s = np.asarray(line.segments, dtype=np.float32).reshape(-1, 2, 3)
        segs.append(s)
        cols.append(np.broadcast_to(np.asarray(line.color, np.float32), (len(s), 4)))
        radii.append(np.full(len(s), max(line.thickness, floor) / 2, np.float32))
    if not segs:
        return (np.zeros((0, 2, 3), np.float32), np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32))
    return np.concatenate(segs), np.concatenate(cols), np.concatenate(radii)


def lines_object(name: str, segments, colors, radii, *, material, collection):
    """One edge mesh for every line, drawn as tubes (renders in Cycles and EEVEE)."""
    m = len(segments)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(2 * m)
    mesh.vertices.foreach_set("co", np.ascontiguousarray(segments, np.float32).ravel())
    mesh.edges.add(m)
    mesh.edges.foreach_set("vertices", np.arange(2 * m, dtype=np.int32))
    mesh.attributes.new(DECOR_COLOR, "FLOAT_COLOR", "POINT").data.foreach_set(
        "color", np.repeat(np.asarray(colors, np.float32), 2, axis=0).ravel())
    mesh.attributes.new("radius", "FLOAT", "POINT").data.foreach_set(
        "value", np.repeat(np.asarray(radii, np.float32), 2))
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    nodes.add_modifier(obj, nodes.lines_group(), nodes.LINES_MODIFIER, nodes.LINES_INPUTS,
                       {"Thickness Scale": 1.0, "Material": material})
    return obj


def triangles_object(name: str, triangles: list[TrianglePlan], *, material, collection):
    """All flow-guide triangles in one mesh, translucent colour per triangle."""
    verts = np.concatenate([np.asarray(t.vertices, np.float32).reshape(-1, 3, 3)
                            for t in triangles])
    colors = np.concatenate([np.asarray(t.colors, np.float32).reshape(-1, 4)
                             for t in triangles])
    m = len(verts)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(3 * m)
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.add(3 * m)
    mesh.loops.foreach_set("vertex_index", np.arange(3 * m, dtype=np.int32))
    mesh.polygons.add(m)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * m, 3, dtype=np.int32))
    mesh.attributes.new(DECOR_COLOR, "FLOAT_COLOR", "POINT").data.foreach_set(
        "color", np.repeat(colors, 3, axis=0).ravel())
    mesh.update()
    mesh.validate()
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    obj.visible_shadow = False
    collection.objects.link(obj)
    return obj


CAP_HEIGHT = 0.72        # Blender's built-in font: capitals are 0.72 of the font size
FACE_LABEL_LIFT = 0.6   # how far a face label sits off its face (cells reach at most 0.475)


def face_label_matrix(label: LabelPlan, camera) -> np.ndarray:
    """Columns right, up, normal for text lying on the label's face: the normal points to the
    camera's side of the face and `up` is the face direction closest to the camera's up, so
    the text reads upright and unmirrored from the camera."""
    cam = np.array(camera.matrix_world.to_3x3())
    toward_camera, cam_up = cam[:, 2], cam[:, 1]
    a, b = (np.asarray(v, dtype=np.float64) for v in label.face_axes)
    normal = np.cross(a, b)
    normal /= np.linalg.norm(normal) or 1.0
    if np.dot(normal, toward_camera) < 0:
        normal = -normal
    candidates = [a, -a, b, -b]
    up = max(candidates, key=lambda u: float(np.dot(u, cam_up)))
    up = up / (np.linalg.norm(up) or 1.0)
    right = np.cross(up, normal)
    return np.stack([right, up, normal], axis=1)


def label_object(name: str, label: LabelPlan, *, material, camera, collection):
    """A flat text object centred on the label's position: lying on its face (names, as mm
    draws them) on the side the camera sees, or turned to face the camera (shape labels)."""
    curve = bpy.data.curves.new(name, "FONT")
    curve.body = label.text
    curve.size = float(label.size) / CAP_HEIGHT   # label.size is the letters' height, as in mm
    curve.align_x = "CENTER"
    curve.align_y = "CENTER"
    curve.materials.append(material)
    obj = bpy.data.objects.new(name, curve)
    position = np.asarray(label.position, dtype=np.float64)
    obj.visible_shadow = False
    obj["mm_label_kind"] = label.kind
    if camera is not None and len(label.face_axes) == 2:
        m = face_label_matrix(label, camera)
        obj.matrix_world = Matrix(m.tolist()).to_4x4()
        position = position + m[:, 2] * FACE_LABEL_LIFT
    elif camera is not None:
        # Native, no handlers: the text keeps the camera's orientation (screen-aligned).
        obj.rotation_euler = camera.matrix_world.to_euler("XYZ")
        c = obj.constraints.new("COPY_ROTATION")
        c.target = camera
        # Upright text centred on a face would cut through its cells: bring it towards the
        # camera by half its width.
        toward = np.asarray(camera.matrix_world.translation, dtype=np.float64) - position
        dist = np.linalg.norm(toward)
        if dist > 0:
            half_width = 0.3 * float(label.size) / CAP_HEIGHT * max(len(label.text), 1)
            position = position + toward / dist * min(half_width, 0.25 * dist)
    obj.location = [float(v) for v in position]
    collection.objects.link(obj)
    return obj
