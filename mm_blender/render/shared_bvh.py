"""Static cells kept in a BVH of their own while a sweep chunk renders.

Background renders use Cycles' static BVH: every geometry that only one object uses is
flattened (its transform applied) into one top-level BVH, which is rebuilt whole whenever
anything in the scene changes, so each frame of a sweep rebuilt the BVH of all ~0.9M cells
although only products, highlights and results move. A geometry that two objects share is
instead traced through its own BVH, which a persistent Cycles session builds once and keeps.

`static_cells_shared(scene)` gives every static cells object (drawn as a point cloud, not
animated) a second, vanishing instance of its own cells for the duration of a render: the
cells are unchanged on screen (the copy is a millionth of their size, at the object's origin)
and Cycles now shares their geometry between two instances. Measured on the SmolLM2 head's
sweep (bench_render.py): Cycles sync 0.26-0.30 s -> 0.19-0.21 s a frame. The modifiers and
the node group are removed afterwards, so nothing of it is saved with a .blend.
"""
from __future__ import annotations

from contextlib import contextmanager

import bpy

from ..scene import nodes

GROUP = "mm_render_shared_bvh"
MODIFIER = "mm_render_shared_bvh"
VANISH = 1e-6     # the copy's scale: far below a pixel at any framing of a matrix


def _group():
    group = bpy.data.node_groups.new(GROUP, "GeometryNodeTree")
    nodes._socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    nodes._socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    t = nodes._Tree(group)
    gin = t.node("NodeGroupInput")
    # One instance reference used twice: both instances point at the same point cloud, so
    # Cycles syncs one geometry with two users.
    inst = t.node("GeometryNodeGeometryToInstance")
    t.link(gin.outputs[0], inst.inputs[0])
    tiny = t.node("GeometryNodeTransform", Geometry=inst.outputs[0],
                  Scale=(VANISH, VANISH, VANISH))
    both = t.node("GeometryNodeJoinGeometry")
    t.link(tiny.outputs[0], both.inputs[0])
    t.link(inst.outputs[0], both.inputs[0])
    gout = t.node("NodeGroupOutput")
    t.link(both.outputs[0], gout.inputs[0])
    return group


def static_cells(scene) -> list:
    """Rendered cells objects drawn as spheres that nothing animates (no sweep, no keys)."""
    sphere = nodes.SHAPES.index("sphere")
    shape = nodes.CELLS_INPUTS["Shape"]
    found = []
    for obj in scene.objects:
        mod = obj.modifiers.get(nodes.CELLS_MODIFIER)
        if mod is None or obj.hide_render or not mod.show_render:
            continue
        # only the cells modifier (a sweep's objects carry theirs before it), no keyframes
        if mod.get(shape) != sphere or len(obj.modifiers) != 1 or obj.animation_data:
            continue
        found.append(obj)
    return found


@contextmanager
def static_cells_shared(scene):
    """While inside: static cells objects (see `static_cells`) share their geometry."""
    objects = static_cells(scene)
    group = _group() if objects else None
    added = []
    try:
        for obj in objects:
            mod = obj.modifiers.new(MODIFIER, "NODES")
            mod.node_group = group
            mod.show_viewport = False          # render only: the viewport draws as before
            added.append((obj, mod))
        yield [obj for obj, _ in added]
    finally:
        for obj, mod in added:
            if obj.modifiers.get(mod.name) is not None:
                obj.modifiers.remove(mod)
        if group is not None:
            bpy.data.node_groups.remove(group)
