"""Decorations: lines (the plan's LinePlans: cube outlines, row guides), flow-guide
triangles and text labels. Few objects: all lines share one edge mesh drawn as tubes by the
`mm_lines` group, all triangles one mesh; labels are one text object each (their count
doesn't grow with the number of cells). Where each label goes is decided for the camera by
scene/labels.py: names lie on their faces, shape labels (and names that cannot) face the
camera through a Copy Rotation constraint, turned along their edge.
"""
from __future__ import annotations

import bpy
from mathutils import Matrix
import numpy as np

from ..core.plan import LabelPlan, LinePlan, TrianglePlan
from . import labels, nodes

# Colour attribute of line and triangle meshes. Not "color": Cycles does not find a mesh's
# generic attribute by that name (measured, 5.0.1), while the instancer's `color` works.
DECOR_COLOR = "decor_color"
# Lines thinner than this fraction of the scene's diagonal vanish between pixels.
MIN_THICKNESS_FRACTION = 0.0008   # about a pixel at 1280 wide, like mm's GL lines
PAPER_LINE_WEIGHT = 1.8


def scene_scale(bounds_min, bounds_max) -> float:
    return float(np.linalg.norm(np.asarray(bounds_max, float) - np.asarray(bounds_min, float)))


def look_color(color, look: str) -> np.ndarray:
    """A line's plan colour (for the dark look) on the look's background: the paper look
    takes the complement of its sRGB lightness, so light guides become dark ones."""
    c = np.asarray(color, np.float32)
    if look != "paper":
        return c
    srgb = np.where(c[:3] <= 0.0031308, c[:3] * 12.92, 1.055 * np.power(c[:3], 1 / 2.4) - 0.055)
    inv = 1.0 - srgb
    lin = np.where(inv <= 0.04045, inv / 12.92, ((inv + 0.055) / 1.055) ** 2.4)
    return np.array([*lin, c[3]], np.float32)


def gather_lines(lines: list[LinePlan], scale: float, look: str = "dark"):
    """All segments with per-segment colour and radius: (M,2,3), (M,4), (M,). Lines are
    kept at least MIN_THICKNESS_FRACTION of the scene's size thick so big scenes still show
    them."""
    floor = MIN_THICKNESS_FRACTION * scale
    segs, cols, radii = [], [], []
    for line in lines:
        s = np.asarray(line.segments, dtype=np.float32).reshape(-1, 2, 3)
        segs.append(s)
        cols.append(np.broadcast_to(look_color(line.color, look), (len(s), 4)))
        # dark lines on white read thinner than light ones on black: paper draws them wider
        weight = PAPER_LINE_WEIGHT if look == "paper" else 1.0
        radii.append(np.full(len(s), weight * max(line.thickness, floor) / 2, np.float32))
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
FACE_LABEL_LIFT = labels.FACE_LIFT


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


def text_object(name: str, text: str, kind: str, *, material, collection):
    """A flat text object of font size 1, centred on its origin; `place_texts` sizes and
    places it."""
    curve = bpy.data.curves.new(name, "FONT")
    curve.body = text
    curve.size = 1.0
    curve.align_x = "CENTER"
    curve.align_y = "CENTER"
    curve.materials.append(material)
    obj = bpy.data.objects.new(name, curve)
    obj.visible_shadow = False
    obj["mm_label_kind"] = kind
    collection.objects.link(obj)
    return obj


def text_box(obj) -> tuple[np.ndarray, float, float]:
    """(centre offset, width, height) of a font-size-1 text's local bounds."""
    box = np.array([tuple(c) for c in obj.bound_box], dtype=np.float64)
    lo, hi = box.min(axis=0), box.max(axis=0)
    return (lo + hi) / 2, float(max(hi[0] - lo[0], 1e-3)), float(max(hi[1] - lo[1], 1e-3))


def reference_screen(camera, scene, fit_points, view, direction,
                     size=labels.REFERENCE, top: float = 0.0) -> labels.Screen:
    """The camera as it frames the scene at `size` (default mm's screenshot size, 1280x800:
    the frame the labels' pixel sizes are set for). The camera is left framed that way."""
    from . import camera as cameramod
    w, h = size
    cameramod.apply_fit(camera, cameramod.fit(fit_points, view=view, aspect=w / h,
                                              direction=direction, top=top))
    r = scene.render
    old = (r.resolution_x, r.resolution_y)
    r.resolution_x, r.resolution_y = w, h
    try:
        dg = bpy.context.evaluated_depsgraph_get()
        proj = np.array(camera.calc_matrix_camera(dg, x=w, y=h))
    finally:
        r.resolution_x, r.resolution_y = old
    rot = np.array(camera.matrix_world.to_3x3())
    m = proj @ np.array(camera.matrix_world.inverted())
    return labels.Screen(m, np.array(camera.matrix_world.translation),
                         (rot[:, 0], rot[:, 1], rot[:, 2]), (w, h),
                         camera.data.type == "ORTHO")


def place_texts(plan, objects: dict, screen: labels.Screen, camera,
                other_screens=()) -> np.ndarray:
    """Size and place every label object (objects[label.key]) for `screen`; returns the
    world corners of all texts (for framing)."""
    for obj in objects.values():   # measured at font size 1
        obj.data.size = 1.0
    bpy.context.view_layer.update()
    boxes, offsets, faces = {}, {}, {}
    for label in plan.labels:
        c, w, h = text_box(objects[label.key])
        boxes[label.key] = (w, h, CAP_HEIGHT)
        offsets[label.key] = c
        if label.face_axes:
            faces[label.key] = face_label_matrix(label, camera)
    # names float above the row guides, whose tubes are thicker on big scenes
    floor = MIN_THICKNESS_FRACTION * scene_scale(plan.bounds_min, plan.bounds_max)
    # placed for the widest lines either look draws, so a change of look keeps them clear
    placed = labels.place_all(plan, boxes, screen, faces,
                              lift=max(FACE_LABEL_LIFT, PAPER_LINE_WEIGHT * floor / 2 + 0.4),
                              other_screens=other_screens, line_floor=floor,
                              line_weight=PAPER_LINE_WEIGHT)
    corners = []
    for label in plan.labels:
        obj, p = objects[label.key], placed[label.key]
        obj.data.size = float(p.scale)
        centre = p.position - p.matrix @ (offsets[label.key] * p.scale)
        for c in list(obj.constraints):
            obj.constraints.remove(c)
        if p.billboard:
            # Native, no handlers: the text keeps the camera's orientation, turned by its
            # roll about the view axis (the constraint applies the camera's rotation after
            # the object's own).
            obj.location = centre.tolist()
            obj.rotation_euler = (0.0, 0.0, p.roll)
            con = obj.constraints.new("COPY_ROTATION")
            con.target = camera
            con.mix_mode = "BEFORE"
        else:
            m = Matrix(p.matrix.tolist()).to_4x4()
            m.translation = centre.tolist()
            obj.matrix_world = m
        w, h = boxes[label.key][:2]
        local = np.array([[sx * w / 2, sy * h / 2, 0.0] for sx in (-1, 1) for sy in (-1, 1)])
        corners.append(p.position + (local * p.scale) @ p.matrix.T)
    return np.concatenate(corners) if corners else np.zeros((0, 3))
