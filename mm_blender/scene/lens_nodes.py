"""Geometry Nodes groups of the lens and the spotlight, written as versioned Python like
scene/nodes.py and shared by every build (`mm_shared`).

    mm_lens               on `<build>:lens_numbers`, one modifier per matrix: the matrix's
                          cells within the lens's radius (only the rows and columns the radius
                          reaches are read, then an exact distance test on those points),
                          each drawn as its value in digits on a loupe facing the camera (the
                          cells as if seen head-on, spread by the magnification, over a
                          translucent disc): one instance per character, a glyph of
                          mm_lens_glyphs (nan and inf spelt out). Instance attributes
                          lens_value (the value at the shown precision), lens_index (the
                          cell, row-major), lens_matrix, lens_chars, lens_slot, lens_glyph
    mm_lens_glyphs        on the hidden `<build>:lens_glyphs`: the characters of GLYPHS from
                          String to Curves, filled once (Fill Curve per frame and number
                          would cost ~1.5 ms each; bench/bench_lens.py)
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

from .nodes import _existing, _new_group, _socket
from .sweep_nodes import _interface, _identifiers, _Net, products_group

VERSION = 1
LENS_GROUP = "mm_lens"
SPOTLIGHT_GROUP = "mm_spotlight"
SPOTLIGHT_PRODUCTS_GROUP = "mm_spotlight_products"
GLYPHS_GROUP = "mm_lens_glyphs"
GLYPHS = "0123456789-.ainf"      # index = the glyph a lens character picks
GLYPH_MINUS, GLYPH_DOT = 10, 11
SPECIAL_NAN, SPECIAL_INF = 1, 2
GLYPHS_INPUTS = {"Material": "Socket_2"}
GLYPH_ADVANCE = 0.6              # character advance, per unit of font size
GLYPH_DOT_ADVANCE = 0.3          # the point's
GLYPH_MINUS_ADVANCE = 0.35       # the minus's

# Roles of a matrix under the spotlight (input Role of mm_spotlight).
ROLE_OTHER, ROLE_LEFT, ROLE_RIGHT, ROLE_RESULT = 0, 1, 2, 3

LENS_INPUTS_SPEC = [
    ("Source", "NodeSocketObject", None, "The matrix's cells (points with `value`)"),
    # the matrix's grid (scene/overlays.grid_of), so only the cells near the lens are read
    ("Origin", "NodeSocketVector", (0.0, 0.0, 0.0), "Centre of cell (0, 0)"),
    ("Col Axis", "NodeSocketVector", (1.0, 0.0, 0.0), "Unit step of j"),
    ("Row Axis", "NodeSocketVector", (0.0, 0.0, -1.0), "Unit step of i"),
    ("Rows", "NodeSocketInt", 1, ""), ("Cols", "NodeSocketInt", 1, ""),
    ("Row Block", "NodeSocketInt", 1, "Rows per partition block"),
    ("Col Block", "NodeSocketInt", 1, "Columns per partition block"),
    ("Row Gap", "NodeSocketFloat", 0.0, "Extra space between row blocks"),
    ("Col Gap", "NodeSocketFloat", 0.0, "Extra space between column blocks"),
    ("Lens", "NodeSocketObject", None, "The lens Empty: location = centre, X scale x radius"),
    ("Radius", "NodeSocketFloat", 3.0, "Cells within this distance of the lens show values"),
    ("Text Size", "NodeSocketFloat", 0.28, "Font size of the numbers (mm's magnification)"),
    ("Decimals", "NodeSocketInt", 2, "Digits after the point"),
    ("Camera", "NodeSocketObject", None, "The numbers turn to face this camera"),
    ("Lift", "NodeSocketFloat", 6.0, "How far the loupe is brought toward the camera "
     "(enough to clear the face it lies over)"),
    ("Spread", "NodeSocketFloat", 2.8, "The loupe: numbers sit at centre + (cell - centre) "
     "x this, so enlarged numbers keep apart"),
    ("Disc", "NodeSocketBool", True, "Draw the loupe's disc behind the numbers (on a face "
     "that shows some)"),
    ("Disc Material", "NodeSocketMaterial", None, "The disc's material (reads decor_color)"),
    ("Disc Color", "NodeSocketColor", (0.0, 0.0, 0.0, 0.75), "The disc's colour; alpha: "
     "how much it covers"),
    ("Matrix", "NodeSocketInt", 0, "Written as lens_matrix (which matrix a number is of)"),
    ("Glyphs", "NodeSocketObject", None, "The glyphs object (mm_lens_glyphs)"),
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


def _window(t, o, u, radius, block, gap, n):
    """(first, count) of the cells along one axis whose coordinate may lie within `radius`
    of u (coordinates: index + (index // block) * gap); a little generous, never short."""
    pitch = t.f("ADD", block, gap)

    def cell_at(x, rounding):
        b = t.f("FLOOR", t.f("DIVIDE", x, pitch))
        within = t.f(rounding, t.f("SUBTRACT", x, t.f("MULTIPLY", b, pitch)))
        within = t.node("ShaderNodeClamp", Value=within, Min=0.0,
                        Max=t.f("SUBTRACT", block, 1.0)).outputs[0]
        return t.f("MULTIPLY_ADD", b, block, within)

    last = t.f("SUBTRACT", n, 1.0)
    lo = t.f("MAXIMUM", cell_at(t.f("SUBTRACT", u, radius), "FLOOR"), 0.0)
    hi = t.f("MINIMUM", cell_at(t.f("ADD", u, radius), "CEIL"), last)
    count = t.f("MAXIMUM", t.f("ADD", t.f("SUBTRACT", hi, lo), 1.0), 0.0)
    return t.f("FLOOR", lo), t.f("FLOOR", count)


def lens_group():
    """Numbers for the cells under the lens, joined to the modifier's input geometry."""
    group, t = _group(LENS_GROUP, LENS_INPUTS_SPEC)
    if t is None:
        return group
    o = t.node("NodeGroupInput").outputs
    source = t.node("GeometryNodeObjectInfo", Object=o["Source"]).outputs["Geometry"]
    lens = t.node("GeometryNodeObjectInfo", Object=o["Lens"])
    centre = lens.outputs["Location"]
    scale_x = t.node("ShaderNodeSeparateXYZ", Vector=lens.outputs["Scale"]).outputs["X"]
    radius = t.f("MULTIPLY", o["Radius"], t.f("ABSOLUTE", scale_x))
    # Only cells near the lens are touched: the window of rows and columns the radius can
    # reach on the matrix's grid, then each candidate's position and value by index (no pass
    # over every cell, so a 1M-cell matrix costs what a small one does).
    rel = t.v("SUBTRACT", centre, o["Origin"])
    u = t.node("ShaderNodeVectorMath", {"operation": "DOT_PRODUCT"})
    t.set(u.inputs[0], rel)
    t.set(u.inputs[1], o["Col Axis"])
    v = t.node("ShaderNodeVectorMath", {"operation": "DOT_PRODUCT"})
    t.set(v.inputs[0], rel)
    t.set(v.inputs[1], o["Row Axis"])
    # the axes are per cell (their length is 1 / the cell pitch): the radius in cells too
    col_r = t.f("MULTIPLY", radius, t.node("ShaderNodeVectorMath", {"operation": "LENGTH"},
                                           Vector=o["Col Axis"]).outputs["Value"])
    row_r = t.f("MULTIPLY", radius, t.node("ShaderNodeVectorMath", {"operation": "LENGTH"},
                                           Vector=o["Row Axis"]).outputs["Value"])
    j0, nj = _window(t, o, u.outputs["Value"], col_r, o["Col Block"], o["Col Gap"], o["Cols"])
    i0, ni = _window(t, o, v.outputs["Value"], row_r, o["Row Block"], o["Row Gap"], o["Rows"])
    nj_int = t.i("MAXIMUM", nj, 1)
    p = t.index()
    i = t.i("ADD", i0, t.i("DIVIDE_FLOOR", p, nj_int))
    j = t.i("ADD", j0, t.i("FLOORED_MODULO", p, nj_int))
    cell = t.i("MULTIPLY_ADD", i, o["Cols"], j)
    position = t.sample(source, t.node("GeometryNodeInputPosition").outputs[0], cell,
                        "FLOAT_VECTOR")
    candidates = t.node("GeometryNodePoints", Count=t.i("MULTIPLY", ni, nj), Position=position,
                        Radius=0.1).outputs["Points"]
    candidates = t.store(candidates, "lens_index", cell, "INT")
    candidates = t.store(candidates, "value", t.sample(source, t.named("value"), cell))
    here = t.node("GeometryNodeInputPosition").outputs[0]
    distance = t.node("ShaderNodeVectorMath", {"operation": "DISTANCE"})
    t.set(distance.inputs[0], here)
    t.set(distance.inputs[1], centre)
    inside = t.cmp("LESS_EQUAL", distance.outputs["Value"], radius, "FLOAT")
    under = t.node("GeometryNodeSeparateGeometry", {"domain": "POINT"}, Geometry=candidates,
                   Selection=inside).outputs["Selection"]

    # The number as shown, digit by digit (no strings per frame: the glyphs are filled once,
    # in the glyphs object). lens_value is the value at the shown precision, minus zero as 0.
    value = t.named("value")
    magnitude = t.f("ABSOLUTE", value)
    # NaN is written "nan" and inf "inf" (cells show them too); a number too long for 32-bit
    # digits drops decimals (below 1e9 it always fits)
    # NaN is the one value neither below zero nor at or above it
    is_nan = t.b("NOR", t.cmp("LESS_THAN", value, 0.0, "FLOAT"),
                 t.cmp("GREATER_EQUAL", value, 0.0, "FLOAT"))
    is_inf = t.b("AND", t.b("NOT", is_nan), t.cmp("GREATER_THAN", magnitude, 3.0e38, "FLOAT"))
    special = t.b("OR", is_nan, is_inf)
    fits = t.cmp("LESS_THAN", t.f("MULTIPLY", magnitude, _pow10(t, o["Decimals"])), 1.0e9,
                 "FLOAT")
    d = t.switch("INT", fits, 0, o["Decimals"])
    d = t.switch("INT", special, d, 0)
    labels = t.store(under, "lens_decimals", d, "INT")
    d = t.named("lens_decimals", "INT")
    scale = _pow10(t, d)
    shown = t.f("ADD", t.f("DIVIDE", t.f("ROUND", t.f("MULTIPLY", value, scale)), scale), 0.0)
    labels = t.store(labels, "lens_value", shown)
    labels = t.store(labels, "lens_matrix", o["Matrix"], "INT")
    n_int = t.switch("FLOAT", special, t.f("ROUND", t.f("MULTIPLY", magnitude, scale)), 0.0)
    labels = t.store(labels, "lens_n", n_int, "INT")
    labels = t.store(labels, "lens_special", t.switch("INT", is_nan, t.switch(
        "INT", is_inf, 0, SPECIAL_INF), SPECIAL_NAN), "INT")
    negative = t.cmp("LESS_THAN", t.named("lens_value"), 0.0, "FLOAT")
    labels = t.store(labels, "lens_neg", t.switch("INT", negative, 0, 1), "INT")
    n = t.named("lens_n", "INT")
    digits = 1
    for k in range(1, 10):
        digits = t.i("ADD", digits, t.switch("INT", t.cmp("GREATER_EQUAL", n, 10 ** k), 0, 1))
    total = t.i("MAXIMUM", digits, t.i("ADD", d, 1))          # digits written, at least 0.x
    labels = t.store(labels, "lens_digits", total, "INT")
    neg = t.named("lens_neg", "INT")
    kind = t.named("lens_special", "INT")
    special = t.cmp("GREATER_THAN", kind, 0)
    has_dot = t.b("AND", t.cmp("GREATER_THAN", d, 0), t.b("NOT", special))
    chars = t.i("ADD", t.i("ADD", neg, t.named("lens_digits", "INT")),
                t.switch("INT", has_dot, 0, 1))
    chars = t.switch("INT", special, chars, t.i("ADD", neg, 3))     # [-]inf, nan
    labels = t.store(labels, "lens_chars", chars, "INT")
    # A loupe facing the camera, Lift toward it from the lens centre (projected onto the
    # matrix's face): it shows the cells under the lens as if seen head-on, j to the right
    # and i downward, spread so the enlarged numbers keep apart. Numbers and disc share the
    # loupe's plane, so none hides behind another or behind the cells.
    camera = t.node("GeometryNodeObjectInfo", Object=o["Camera"])
    turn = camera.outputs["Rotation"]
    right = t.node("FunctionNodeRotateVector", Vector=(1.0, 0.0, 0.0), Rotation=turn).outputs[0]
    up = t.node("FunctionNodeRotateVector", Vector=(0.0, 1.0, 0.0), Rotation=turn).outputs[0]
    col_unit = t.v("NORMALIZE", o["Col Axis"])
    row_unit = t.v("NORMALIZE", o["Row Axis"])
    normal = t.v("NORMALIZE", t.v("CROSS_PRODUCT", col_unit, row_unit))

    def dot(a, b):
        node = t.node("ShaderNodeVectorMath", {"operation": "DOT_PRODUCT"})
        t.set(node.inputs[0], a)
        t.set(node.inputs[1], b)
        return node.outputs["Value"]

    on_face = t.v("SUBTRACT", centre,
                  t.v("SCALE", normal, dot(t.v("SUBTRACT", centre, o["Origin"]), normal)))
    to_camera = t.v("SUBTRACT", camera.outputs["Location"], on_face)
    toward = t.v("NORMALIZE", to_camera)
    # never more than 0.4 of the way to the camera (a small scene seen from close by)
    distance = t.node("ShaderNodeVectorMath", {"operation": "LENGTH"}, Vector=to_camera)
    lift = t.f("MINIMUM", o["Lift"], t.f("MULTIPLY", distance.outputs["Value"], 0.4))
    front = t.v("ADD", on_face, t.v("SCALE", toward, lift))
    rel = t.v("SUBTRACT", here, on_face)
    across = t.v("SCALE", right, t.f("MULTIPLY", dot(rel, col_unit), o["Spread"]))
    down = t.v("SCALE", up, t.f("MULTIPLY", dot(rel, row_unit), t.f("MULTIPLY", o["Spread"], -1.0)))
    spread = t.v("ADD", front, t.v("ADD", across, down))
    labels = t.node("GeometryNodeSetPosition", Geometry=labels, Position=spread).outputs["Geometry"]

    # one point per character
    dup = t.node("GeometryNodeDuplicateElements", {"domain": "POINT"}, Geometry=labels,
                 Amount=t.named("lens_chars", "INT"))
    glyphs = t.store(dup.outputs["Geometry"], "lens_slot", dup.outputs["Duplicate Index"], "INT")
    c = t.named("lens_slot", "INT")
    intd = t.i("SUBTRACT", t.named("lens_digits", "INT"), d)
    cp = t.i("SUBTRACT", c, neg)
    is_minus = t.b("AND", t.cmp("EQUAL", neg, 1), t.cmp("EQUAL", c, 0))
    is_dot = t.b("AND", has_dot, t.cmp("EQUAL", cp, intd))
    q = t.i("SUBTRACT", cp, t.switch("INT", t.cmp("GREATER_THAN", cp, intd), 0, 1))
    k = t.i("SUBTRACT", t.i("SUBTRACT", t.named("lens_digits", "INT"), 1), q)
    digit = t.i("FLOORED_MODULO", t.i("DIVIDE_FLOOR", t.named("lens_n", "INT"),
                                      t.i("POWER", 10, t.i("MAXIMUM", k, 0))), 10)
    glyph = t.switch("INT", is_minus, t.switch("INT", is_dot, digit, GLYPH_DOT), GLYPH_MINUS)
    # the letters of nan / inf, by slot after the sign
    nan_letter = t.switch("INT", t.cmp("EQUAL", cp, 1), GLYPHS.index("n"), GLYPHS.index("a"))
    inf_letter = t.switch("INT", t.cmp("EQUAL", cp, 0), t.switch(
        "INT", t.cmp("EQUAL", cp, 1), GLYPHS.index("f"), GLYPHS.index("n")), GLYPHS.index("i"))
    letter = t.switch("INT", t.cmp("EQUAL", kind, SPECIAL_NAN), inf_letter, nan_letter)
    glyph = t.switch("INT", t.b("AND", special, t.b("NOT", is_minus)), glyph, letter)
    glyphs = t.store(glyphs, "lens_glyph", glyph, "INT")
    size = o["Text Size"]
    advance = t.f("MULTIPLY", size, GLYPH_ADVANCE)
    # monospaced digits; the point and the minus are narrower; the number is centred
    dot_slot = t.i("ADD", neg, intd)
    narrow_dot = t.f("MULTIPLY", size, GLYPH_ADVANCE - GLYPH_DOT_ADVANCE)
    narrow_minus = t.f("MULTIPLY", size, GLYPH_ADVANCE - GLYPH_MINUS_ADVANCE)
    after_dot = t.b("AND", has_dot, t.cmp("GREATER_THAN", c, dot_slot))
    after_minus = t.b("AND", t.cmp("EQUAL", neg, 1), t.cmp("GREATER_THAN", c, 0))
    is_neg = t.cmp("EQUAL", neg, 1)
    width = t.f("SUBTRACT", t.f("MULTIPLY", t.named("lens_chars", "INT"), advance),
                t.f("ADD", t.switch("FLOAT", has_dot, 0.0, narrow_dot),
                    t.switch("FLOAT", is_neg, 0.0, narrow_minus)))
    shift = t.f("ADD", t.switch("FLOAT", after_dot, 0.0, narrow_dot),
                t.switch("FLOAT", after_minus, 0.0, narrow_minus))
    x = t.f("SUBTRACT", t.f("SUBTRACT", t.f("MULTIPLY", c, advance), shift),
            t.f("MULTIPLY", width, 0.5))
    offset = t.v("ADD", t.v("SCALE", right, x), t.v("SCALE", up, t.f("MULTIPLY", size, -0.36)))
    glyphs = t.node("GeometryNodeSetPosition", Geometry=glyphs, Offset=offset).outputs["Geometry"]
    atlas = t.node("GeometryNodeObjectInfo", Object=o["Glyphs"]).outputs["Geometry"]
    scale_vec = t.node("ShaderNodeCombineXYZ", X=size, Y=size, Z=size).outputs[0]
    inst = t.node("GeometryNodeInstanceOnPoints", Points=glyphs, Instance=atlas,
                  Pick_Instance=True, Instance_Index=t.named("lens_glyph", "INT"),
                  Rotation=turn, Scale=scale_vec).outputs["Instances"]
    for name in ("lens_n", "lens_neg", "lens_digits", "lens_special", "lens_decimals"):
        inst = t.node("GeometryNodeRemoveAttribute", Geometry=inst, Name=name).outputs[0]
    # the disc: translucent, behind the numbers (dark under light digits, light under dark
    # ones), a little larger than the loupe
    disc = t.node("GeometryNodeMeshCircle", {"fill_type": "NGON"}, Vertices=48,
                  Radius=t.f("MULTIPLY_ADD", radius, o["Spread"], t.f("MULTIPLY", size, 1.2)))
    disc = t.node("GeometryNodeTransform", Geometry=disc.outputs["Mesh"],
                  Translation=t.v("SUBTRACT", front, t.v("SCALE", toward, 0.05)),
                  Rotation=turn).outputs["Geometry"]
    disc = t.node("GeometryNodeStoreNamedAttribute", {"data_type": "FLOAT_COLOR",
                                                      "domain": "POINT"},
                  Geometry=disc, Name="decor_color",     # decor.DECOR_COLOR
                  Value=o["Disc Color"]).outputs["Geometry"]
    disc = t.node("GeometryNodeSetMaterial", Geometry=disc,
                  Material=o["Disc Material"]).outputs["Geometry"]
    # a disc on each face that shows numbers
    shown = t.node("GeometryNodeAttributeDomainSize", {"component": "POINTCLOUD"}, Geometry=under)
    has_numbers = t.cmp("GREATER_THAN", shown.outputs["Point Count"], 0)
    switch = t.node("GeometryNodeSwitch", {"input_type": "GEOMETRY"})
    t.link(t.b("AND", o["Disc"], has_numbers), switch.inputs["Switch"])
    t.link(disc, switch.inputs["True"])
    disc = switch.outputs["Output"]
    join = t.node("GeometryNodeJoinGeometry")
    t.link(inst, join.inputs[0])
    t.link(disc, join.inputs[0])
    t.link(o["Geometry"], join.inputs[0])
    gout = t.node("NodeGroupOutput")
    t.link(join.outputs[0], gout.inputs[0])
    return group


def glyphs_group():
    """The lens's glyphs, filled once: one instance per character of GLYPHS (a mesh at the
    character's origin, font size 1), which the lens picks by index."""
    group = _existing(GLYPHS_GROUP, VERSION)
    if group is not None:
        return group
    group = _new_group(GLYPHS_GROUP, VERSION)
    _socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    _socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    _socket(group, "Material", "INPUT", "NodeSocketMaterial")
    ids = {i.name: i.identifier for i in group.interface.items_tree
           if getattr(i, "in_out", "") == "INPUT" and i.name != "Geometry"}
    assert ids == GLYPHS_INPUTS, ids
    t = _Net(group)
    gin = t.node("NodeGroupInput")
    # one String to Curves per character, filled, then one instance each in GLYPHS order
    # (Fill Curve on String to Curves' instances would realize them into one mesh). A
    # multi-input socket lists its newest link first: link the last character first.
    atlas = t.node("GeometryNodeGeometryToInstance")
    for char in reversed(GLYPHS):
        curve = t.node("GeometryNodeStringToCurves", String=char, Size=1.0)
        real = t.node("GeometryNodeRealizeInstances", Geometry=curve.outputs["Curve Instances"])
        filled = t.node("GeometryNodeFillCurve", Curve=real.outputs["Geometry"])
        mat = t.node("GeometryNodeSetMaterial", Geometry=filled.outputs["Mesh"],
                     Material=gin.outputs["Material"])
        t.link(mat.outputs["Geometry"], atlas.inputs[0])
    mat = atlas
    gout = t.node("NodeGroupOutput")
    t.link(mat.outputs[0], gout.inputs[0])
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
