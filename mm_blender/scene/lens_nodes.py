"""Geometry Nodes groups of the lens and the spotlight, written as versioned Python like
scene/nodes.py and shared by every build (`mm_shared`).

    mm_lens               on `<build>:lens_numbers`, one modifier per matrix: the matrix's
                          cells within the lens's radius (a distance test on points, before
                          any string work), each drawn as its value in digits facing the
                          camera. Instance attributes lens_value (the value at the shown
                          precision), lens_index (the cell, row-major), lens_matrix, lens_chars
    mm_spotlight          before `mm_cells` on every matrix: the spotlit row (left), column
                          (right) or cell (result) keep their colour, the rest is dimmed;
                          point attribute `spotlit` (1/0)
    mm_spotlight_products the spotlit cell's k products inside the cube (mm's interior
                          spotlight), from the sweep's products group

The lens is an Empty (input Lens): its location is the centre, its X scale multiplies the
radius. The spotlit cell is the result cell nearest to the Empty `<build>:spotlight`. Both
are keyframed like any object; nothing here runs Python, so a saved .blend plays anywhere.
"""
from __future__ import annotations

from .nodes import _existing, _new_group
from .sweep_nodes import _interface, _identifiers, _Net, products_group

VERSION = 1
LENS_GROUP = "mm_lens"
SPOTLIGHT_GROUP = "mm_spotlight"
SPOTLIGHT_PRODUCTS_GROUP = "mm_spotlight_products"

# Roles of a matrix under the spotlight (input Role of mm_spotlight).
ROLE_OTHER, ROLE_LEFT, ROLE_RIGHT, ROLE_RESULT = 0, 1, 2, 3

LENS_INPUTS_SPEC = [
    ("Source", "NodeSocketObject", None, "The matrix's cells (points with `value`)"),
    ("Lens", "NodeSocketObject", None, "The lens Empty: location = centre, X scale x radius"),
    ("Radius", "NodeSocketFloat", 3.0, "Cells within this distance of the lens show values"),
    ("Text Size", "NodeSocketFloat", 0.28, "Font size of the numbers (mm's magnification)"),
    ("Decimals", "NodeSocketInt", 2, "Digits after the point"),
    ("Camera", "NodeSocketObject", None, "The numbers turn to face this camera"),
    ("Lift", "NodeSocketFloat", 0.6, "How far the numbers sit in front of their cells"),
    ("Matrix", "NodeSocketInt", 0, "Written as lens_matrix (which matrix a number is of)"),
    ("Material", "NodeSocketMaterial", None, "The numbers' material"),
]
SPOTLIGHT_INPUTS_SPEC = [
    ("Spotlight", "NodeSocketObject", None, "Empty on the spotlit result cell"),
    ("Result", "NodeSocketObject", None, "The result's cells (points), to find that cell"),
    ("Result Cols", "NodeSocketInt", 1, "Columns of the result"),
    ("Role", "NodeSocketInt", ROLE_OTHER, "0 other (all dimmed), 1 left (row lit), "
     "2 right (column lit), 3 result (cell lit)"),
    ("Cols", "NodeSocketInt", 1, "Columns of this matrix"),
    ("Dim", "NodeSocketFloat", 1 / 3, "Brightness of the cells not spotlit"),
]
SPOTLIGHT_PRODUCTS_INPUTS_SPEC = [
    ("Spotlight", "NodeSocketObject", None, "Empty on the spotlit result cell"),
    ("Result", "NodeSocketObject", None, "The result's cells (points)"),
    ("Left", "NodeSocketObject", None, "Object whose points carry L's `value`, row-major"),
    ("Right", "NodeSocketObject", None, "Object whose points carry R's `value`, row-major"),
    ("Rows", "NodeSocketInt", 1, "i"), ("Cols", "NodeSocketInt", 1, "j"),
    ("Depth", "NodeSocketInt", 1, "k"),
    ("I Block", "NodeSocketInt", 1, ""), ("J Block", "NodeSocketInt", 1, ""),
    ("K Block", "NodeSocketInt", 1, ""),
    ("Gap", "NodeSocketFloat", 0.0, "Gap between partition blocks"),
    ("Base", "NodeSocketVector", (0.0, 0.0, 0.0), "Position of product (0, 0, 0)"),
    ("Step I", "NodeSocketVector", (0.0, 0.0, -1.0), ""),
    ("Step J", "NodeSocketVector", (1.0, 0.0, 0.0), ""),
    ("Step K", "NodeSocketVector", (0.0, 1.0, 0.0), ""),
    ("Absmin", "NodeSocketFloat", 0.0, ""), ("Absmax", "NodeSocketFloat", 1.0, ""),
    ("Colours", "NodeSocketObject", None, "The colour table object"),
    ("Table Size", "NodeSocketInt", 4096, ""),
]
LENS_INPUTS = _identifiers(LENS_INPUTS_SPEC)
SPOTLIGHT_INPUTS = _identifiers(SPOTLIGHT_INPUTS_SPEC)
SPOTLIGHT_PRODUCTS_INPUTS = _identifiers(SPOTLIGHT_PRODUCTS_INPUTS_SPEC)


def _group(base, spec):
    group = _existing(base, VERSION)
    if group is not None:
        return group, None
    group = _new_group(base, VERSION)
    _interface(group, spec)
    return group, _Net(group)


def _pow10(t, decimals):
    return t.f("POWER", 10.0, decimals)


def lens_group():
    """Numbers for the cells under the lens, joined to the modifier's input geometry."""
    group, t = _group(LENS_GROUP, LENS_INPUTS_SPEC)
    if t is None:
        return group
    o = t.node("NodeGroupInput").outputs
    source = t.node("GeometryNodeObjectInfo", Object=o["Source"]).outputs["Geometry"]
    lens = t.node("GeometryNodeObjectInfo", Object=o["Lens"])
    scale_x = t.node("ShaderNodeSeparateXYZ", Vector=lens.outputs["Scale"]).outputs["X"]
    radius = t.f("MULTIPLY", o["Radius"], t.f("ABSOLUTE", scale_x))
    position = t.node("GeometryNodeInputPosition").outputs[0]
    distance = t.node("ShaderNodeVectorMath", {"operation": "DISTANCE"})
    t.set(distance.inputs[0], position)
    t.set(distance.inputs[1], lens.outputs["Location"])
    inside = t.cmp("LESS_EQUAL", distance.outputs["Value"], radius, "FLOAT")
    # The radius test runs on points first: only the few cells inside reach the strings.
    # The cell's index is stored on those points only, then they are split off.
    marked = t.store(source, "lens_index", t.index(), "INT", selection=inside)
    under = t.node("GeometryNodeSeparateGeometry", {"domain": "POINT"}, Geometry=marked,
                   Selection=inside).outputs["Selection"]

    zin = t.node("GeometryNodeForeachGeometryElementInput")
    zout = t.node("GeometryNodeForeachGeometryElementOutput")
    zin.pair_with_output(zout)
    zout.domain = "POINT"
    zout.input_items.new("FLOAT", "Value")
    zout.input_items.new("INT", "Cell")
    zout.input_items.new("VECTOR", "Position")
    t.link(under, zin.inputs["Geometry"])
    t.link(t.named("value"), zin.inputs["Value"])
    t.link(t.named("lens_index", "INT"), zin.inputs["Cell"])
    t.link(position, zin.inputs["Position"])
    value = zin.outputs["Value"]
    # The number as shown: rounded to the precision first (so lens_value is what is read),
    # and minus zero written as zero.
    scale = _pow10(t, o["Decimals"])
    shown = t.f("DIVIDE", t.f("ROUND", t.f("MULTIPLY", value, scale)), scale)
    shown = t.f("ADD", shown, 0.0)
    text = t.node("FunctionNodeValueToString", Value=shown, Decimals=o["Decimals"])
    chars = t.node("FunctionNodeStringLength", String=text.outputs["String"])
    curves = t.node("GeometryNodeStringToCurves", {"align_x": "CENTER", "align_y": "MIDDLE"},
                    String=text.outputs["String"], Size=o["Text Size"])
    real = t.node("GeometryNodeRealizeInstances", Geometry=curves.outputs["Curve Instances"])
    mesh = t.node("GeometryNodeFillCurve", Curve=real.outputs["Geometry"]).outputs["Mesh"]
    mesh = t.node("GeometryNodeSetMaterial", Geometry=mesh,
                  Material=o["Material"]).outputs["Geometry"]
    label = t.node("GeometryNodeGeometryToInstance", Geometry=mesh).outputs["Instances"]
    for name, field, kind in (("lens_value", shown, "FLOAT"),
                              ("lens_index", zin.outputs["Cell"], "INT"),
                              ("lens_chars", chars.outputs["Length"], "INT"),
                              ("lens_matrix", o["Matrix"], "INT")):
        node = t.node("GeometryNodeStoreNamedAttribute", {"data_type": kind, "domain": "INSTANCE"},
                      Name=name)
        t.set(node.inputs["Geometry"], label)
        t.set(node.inputs["Value"], field)
        label = node.outputs["Geometry"]
    # Facing the camera: the camera's rotation; in front of the cell by Lift, toward it.
    camera = t.node("GeometryNodeObjectInfo", Object=o["Camera"])
    toward = t.v("NORMALIZE", t.v("SUBTRACT", camera.outputs["Location"], zin.outputs["Position"]))
    where = t.v("ADD", zin.outputs["Position"], t.v("SCALE", toward, o["Lift"]))
    placed = t.node("GeometryNodeTransform", Geometry=label, Translation=where,
                    Rotation=camera.outputs["Rotation"]).outputs["Geometry"]
    t.link(placed, zout.inputs["Generation_0"])
    numbers = zout.outputs["Generation_0"]
    join = t.node("GeometryNodeJoinGeometry")
    t.link(numbers, join.inputs[0])
    t.link(o["Geometry"], join.inputs[0])
    gout = t.node("NodeGroupOutput")
    t.link(join.outputs[0], gout.inputs[0])
    return group


def _spotlit_cell(t, o):
    """Index (row-major) of the result cell nearest the spotlight Empty."""
    result = t.node("GeometryNodeObjectInfo", Object=o["Result"]).outputs["Geometry"]
    where = t.node("GeometryNodeObjectInfo", Object=o["Spotlight"]).outputs["Location"]
    nearest = t.node("GeometryNodeSampleNearest", {"domain": "POINT"}, Geometry=result)
    t.set(nearest.inputs["Sample Position"], where)
    return nearest.outputs["Index"]


def spotlight_group():
    """Dim every cell but the spotlit row (left), column (right) or cell (result)."""
    group, t = _group(SPOTLIGHT_GROUP, SPOTLIGHT_INPUTS_SPEC)
    if t is None:
        return group
    o = t.node("NodeGroupInput").outputs
    cell = _spotlit_cell(t, o)
    row = t.i("DIVIDE_FLOOR", cell, o["Result Cols"])
    col = t.i("FLOORED_MODULO", cell, o["Result Cols"])
    p = t.index()
    my_row = t.i("DIVIDE_FLOOR", p, o["Cols"])
    my_col = t.i("FLOORED_MODULO", p, o["Cols"])
    lit = t.node("GeometryNodeIndexSwitch", {"data_type": "BOOLEAN"})
    while len(lit.index_switch_items) < 4:
        lit.index_switch_items.new()
    t.set(lit.inputs["Index"], o["Role"])
    t.set(lit.inputs[1], False)
    t.set(lit.inputs[2], t.cmp("EQUAL", my_row, row))
    t.set(lit.inputs[3], t.cmp("EQUAL", my_col, col))
    t.set(lit.inputs[4], t.cmp("EQUAL", p, cell))
    spotlit = lit.outputs[0]
    colour = t.named("color", "FLOAT_COLOR")
    dimmed = t.node("ShaderNodeMix", {"data_type": "RGBA", "blend_type": "MULTIPLY"})
    t.set(dimmed.inputs["Factor"], 1.0)
    t.set(dimmed.inputs[6], colour)
    t.set(dimmed.inputs[7], t.node("FunctionNodeCombineColor", {"mode": "RGB"}, Red=o["Dim"],
                                   Green=o["Dim"], Blue=o["Dim"], Alpha=1.0).outputs["Color"])
    geo = t.store(o["Geometry"], "color", dimmed.outputs[2], "FLOAT_COLOR",
                  selection=t.b("NOT", spotlit))
    geo = t.store(geo, "spotlit", t.switch("INT", spotlit, 0, 1), "INT")
    gout = t.node("NodeGroupOutput")
    t.link(geo, gout.inputs[0])
    return group


def spotlight_products_group():
    """The spotlit cell's k products, as the sweep draws products: step = the cell's index,
    i = step // cols, j = step % cols, k = 0 .. depth - 1."""
    group, t = _group(SPOTLIGHT_PRODUCTS_GROUP, SPOTLIGHT_PRODUCTS_INPUTS_SPEC)
    if t is None:
        return group
    o = t.node("NodeGroupInput").outputs
    cell = _spotlit_cell(t, o)
    inputs = {"Step": cell, "Steps": t.i("MULTIPLY", o["Rows"], o["Cols"]),
              "Left": o["Left"], "Right": o["Right"],
              "I Cells": o["Rows"], "I Points": 1, "I Block": o["I Block"], "I Sweep": True,
              "I Div": o["Cols"], "I Mod": o["Rows"],
              "J Cells": o["Cols"], "J Points": 1, "J Block": o["J Block"], "J Sweep": True,
              "J Div": 1, "J Mod": o["Cols"],
              "K Cells": o["Depth"], "K Points": o["Depth"], "K Block": o["K Block"],
              "K Sweep": False, "K Div": 1, "K Mod": 1}
    for key in ("Gap", "Base", "Step I", "Step J", "Step K", "Absmin", "Absmax", "Colours",
                "Table Size"):
        inputs[key] = o[key]
    node = t.node("GeometryNodeGroup")
    node.node_tree = products_group()
    for key, value in inputs.items():
        t.set(node.inputs[key], value)
    # As mesh vertices: mm_cells makes spheres from a mesh's points (and cubes from either).
    verts = t.node("GeometryNodePointsToVertices", Points=node.outputs[0])
    gout = t.node("NodeGroupOutput")
    t.link(verts.outputs[0], gout.inputs[0])
    return group
