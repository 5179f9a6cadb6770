"""Geometry Nodes groups that play a sweep from one keyframed integer per matmul (its local
step, see core/sweep.py). Written as versioned Python like scene/nodes.py, and shared by every
build (`mm_shared`).

    mm_sweep_products   points for the products in flight: L[i,k] * R[k,j] sampled from the
                        operands' `value` point attributes, placed by the cube's affine map,
                        coloured and sized by the build's colour table; feeds `mm_cells`
    mm_sweep_result     before `mm_cells` on a result (or k-block plane) object: hides cells
                        not written yet; for vvprod/axpy replaces values by the running
                        partial sums (a Repeat Zone over k), recoloured
    mm_sweep_highlight  the operand cells in flight, brighter and a little larger, drawn over
                        the (static) operand by their own small object

All three read the step from input `Step` (identifier Socket_2). Nothing here calls Python at
frame change: a saved .blend plays in any Blender 5.0.
"""
from __future__ import annotations

from ..core.evaluate import POINTWISE_EPILOGUES
from .nodes import _existing, _new_group, _socket, _Tree

VERSION = 1
PRODUCTS_GROUP = "mm_sweep_products"
RESULT_GROUP = "mm_sweep_result"
HIGHLIGHT_GROUP = "mm_sweep_highlight"
POINTWISE_GROUP = "mm_sweep_pointwise"

STEP = "Step"    # the keyframed input of every sweep group (identifier Socket_2)

# Colour and size come from a table of the build's colour rule (core/colour.py itself, so
# they match the static cells): 2 * Table Size points, negative values first, indexed by
# round(sqrt(v) * (Table Size - 1)), v = clip((|x| - absmin) / (absmax - absmin), 0, 1). Both
# mm's HSL rule and the diverging map depend on x only through its sign and sqrt(v).
COLOUR_INPUTS = [
    ("Absmin", "NodeSocketFloat", 0.0, "Smallest |value| of the colour range"),
    ("Absmax", "NodeSocketFloat", 1.0, "Largest |value| of the colour range"),
    ("Colours", "NodeSocketObject", None, "The colour table object (points with color, size)"),
    ("Table Size", "NodeSocketInt", 4096, "Entries per sign in the colour table"),
]

_AXIS = [
    ("{} Cells", "NodeSocketInt", 1, "Cells along the axis"),
    ("{} Points", "NodeSocketInt", 1, "Indices in flight (cells, or blocks if swept)"),
    ("{} Block", "NodeSocketInt", 1, "Block size"),
    ("{} Sweep", "NodeSocketBool", False, "One index per block: block*size + (step // div) % mod"),
    ("{} Div", "NodeSocketInt", 1, ""),
    ("{} Mod", "NodeSocketInt", 1, ""),
]

PRODUCTS_INPUTS_SPEC = [
    (STEP, "NodeSocketInt", -1, "The matmul's local step (keyframed, constant)"),
    ("Steps", "NodeSocketInt", 1, "Local steps of the sweep"),
    ("Left", "NodeSocketObject", None, "Object whose points carry L's `value`, row-major"),
    ("Right", "NodeSocketObject", None, "Object whose points carry R's `value`, row-major"),
    *[(n.format(a), t, d, s) for a in ("I", "K", "J") for (n, t, d, s) in _AXIS],
    ("Gap", "NodeSocketFloat", 0.0, "Gap between partition blocks"),
    ("Base", "NodeSocketVector", (0.0, 0.0, 0.0), "Position of product (0, 0, 0)"),
    ("Step I", "NodeSocketVector", (0.0, 0.0, -1.0), "Offset per i"),
    ("Step J", "NodeSocketVector", (1.0, 0.0, 0.0), "Offset per j"),
    ("Step K", "NodeSocketVector", (0.0, 1.0, 0.0), "Offset per k"),
    *COLOUR_INPUTS,
]

RESULT_INPUTS_SPEC = [
    (STEP, "NodeSocketInt", -1, "The matmul's local step (keyframed, constant)"),
    ("Steps", "NodeSocketInt", 1, "Local steps of the sweep"),
    ("Rows", "NodeSocketInt", 1, ""),
    ("Cols", "NodeSocketInt", 1, ""),
    ("Row Block", "NodeSocketInt", 1, ""),
    ("Col Block", "NodeSocketInt", 1, ""),
    ("Row Coef", "NodeSocketInt", 1, "Cell (i, j) is written at (i % row block) * row coef"),
    ("Col Coef", "NodeSocketInt", 0, "  + (j % col block) * col coef"),
    ("Keep When Done", "NodeSocketBool", True, "Show every cell once the sweep is over"),
    ("Accumulate", "NodeSocketBool", False, "Show running partial sums (vvprod, axpy)"),
    ("Left", "NodeSocketObject", None, ""),
    ("Right", "NodeSocketObject", None, ""),
    ("Depth", "NodeSocketInt", 1, "k: left columns = right rows"),
    ("K Block", "NodeSocketInt", 1, ""),
    ("K Blocks", "NodeSocketInt", 1, ""),
    ("Epilogue", "NodeSocketInt", 0, "Pointwise epilogue on partial sums: "
     + ", ".join(f"{i} {e}" for i, e in enumerate(POINTWISE_EPILOGUES))),
    *COLOUR_INPUTS,
]

HIGHLIGHT_INPUTS_SPEC = [
    (STEP, "NodeSocketInt", -1, "The matmul's local step (keyframed, constant)"),
    ("Steps", "NodeSocketInt", 1, "Local steps of the sweep"),
    ("Source", "NodeSocketObject", None, "Object whose points are the operand's cells"),
    *[(n.format(a), t, d, s) for a in ("Row", "Col") for (n, t, d, s) in _AXIS],
    ("Boost", "NodeSocketFloat", 0.214, "Added to the linear RGB of highlighted cells"),
    ("Grow", "NodeSocketFloat", 1.08, "Highlighted cells are drawn this much larger"),
]


def _identifiers(spec) -> dict[str, str]:
    """Interface order fixes identifiers: Geometry in Socket_0, out Socket_1, then inputs."""
    return {name: f"Socket_{n + 2}" for n, (name, *_rest) in enumerate(spec)}


PRODUCTS_INPUTS = _identifiers(PRODUCTS_INPUTS_SPEC)
RESULT_INPUTS = _identifiers(RESULT_INPUTS_SPEC)
HIGHLIGHT_INPUTS = _identifiers(HIGHLIGHT_INPUTS_SPEC)


class _Net(_Tree):
    """nodes._Tree plus arithmetic shorthands (math nodes have unnamed duplicate inputs)."""

    def _op(self, bl_idname, op, *args, props=None):
        node = self.node(bl_idname, {"operation": op, **(props or {})})
        for sock, value in zip(node.inputs, args):
            self.set(sock, value)
        return node.outputs[0]

    def f(self, op, *args):              # float math
        return self._op("ShaderNodeMath", op, *args)

    def i(self, op, *args):              # integer math
        return self._op("FunctionNodeIntegerMath", op, *args)

    def v(self, op, *args):              # vector math
        node = self.node("ShaderNodeVectorMath", {"operation": op})
        if op == "SCALE":
            self.set(node.inputs[0], args[0])
            self.set(node.inputs["Scale"], args[1])
        else:
            for sock, value in zip(node.inputs, args):
                self.set(sock, value)
        return node.outputs["Vector"]

    def cmp(self, op, a, b, data_type="INT"):
        node = self.node("FunctionNodeCompare", {"data_type": data_type, "operation": op})
        if data_type == "INT":
            self.set(node.inputs[2], a)
            self.set(node.inputs[3], b)
        else:
            self.set(node.inputs[0], a)
            self.set(node.inputs[1], b)
            if op in ("EQUAL", "NOT_EQUAL"):
                node.inputs["Epsilon"].default_value = 0.0    # exact, not Blender's 0.001
        return node.outputs["Result"]

    def b(self, op, *args):              # boolean math
        return self._op("FunctionNodeBooleanMath", op, *args)

    def switch(self, kind, cond, false, true):
        node = self.node("GeometryNodeSwitch", {"input_type": kind})
        self.set(node.inputs["Switch"], cond)
        self.set(node.inputs["False"], false)
        self.set(node.inputs["True"], true)
        return node.outputs["Output"]

    def named(self, name, data_type="FLOAT"):
        return self.node("GeometryNodeInputNamedAttribute", {"data_type": data_type},
                         Name=name).outputs["Attribute"]

    def store(self, geometry, name, value, data_type="FLOAT", selection=None):
        node = self.node("GeometryNodeStoreNamedAttribute",
                         {"data_type": data_type, "domain": "POINT"}, Name=name)
        self.set(node.inputs["Geometry"], geometry)
        self.set(node.inputs["Value"], value)
        if selection is not None:
            self.set(node.inputs["Selection"], selection)
        return node.outputs["Geometry"]

    def sample(self, geometry, value, index, data_type="FLOAT"):
        node = self.node("GeometryNodeSampleIndex", {"data_type": data_type, "domain": "POINT"})
        self.set(node.inputs["Geometry"], geometry)
        self.set(node.inputs["Value"], value)
        self.set(node.inputs["Index"], index)
        return node.outputs[0]

    def index(self):
        return self.node("GeometryNodeInputIndex").outputs[0]

    def subgroup(self, group, **inputs):
        node = self.node("GeometryNodeGroup")
        node.node_tree = group
        for key, value in inputs.items():
            self.set(node.inputs[key.replace("_", " ")], value)
        return node


def _interface(group, spec):
    _socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    _socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    for name, kind, default, desc in spec:
        _socket(group, name, "INPUT", kind, default, description=desc)
    ids = {s.name: s.identifier for s in group.interface.items_tree
           if getattr(s, "in_out", "") == "INPUT" and s.name != "Geometry"}
    assert ids == _identifiers(spec), ids


def _plain_group(base, inputs, outputs):
    """A helper group with only value sockets (no geometry)."""
    group = _existing(base, VERSION)
    if group is not None:
        return group, None
    group = _new_group(base, VERSION)
    for name, kind, default, desc in inputs:
        _socket(group, name, "INPUT", kind, default, description=desc)
    for name, kind in outputs:
        _socket(group, name, "OUTPUT", kind)
    return group, _Net(group)


# --- helpers: pointwise epilogues and the colour table ------------------------------------------

def pointwise_group():
    """The pointwise epilogues (core/evaluate.py) on a float, chosen by index."""
    group, t = _plain_group(POINTWISE_GROUP, [
        ("Value", "NodeSocketFloat", 0.0, ""),
        ("Epilogue", "NodeSocketInt", 0, ", ".join(POINTWISE_EPILOGUES)),
        ("K", "NodeSocketFloat", 1.0, "Contraction size"),
    ], [("Value", "NodeSocketFloat")])
    if t is None:
        return group
    gin = t.node("NodeGroupInput")
    x = gin.outputs["Value"]
    k = gin.outputs["K"]

    def sigmoid(v):
        return t.f("DIVIDE", 1.0, t.f("ADD", 1.0, t.f("EXPONENT", t.f("MULTIPLY", v, -1.0))))

    # erf(x / sqrt 2) by Abramowitz & Stegun 7.1.26, as evaluate._erf
    z = t.f("DIVIDE", x, 2.0 ** 0.5)
    az = t.f("ABSOLUTE", z)
    tt = t.f("DIVIDE", 1.0, t.f("MULTIPLY_ADD", az, 0.3275911, 1.0))
    poly = 1.061405429
    for coef in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = t.f("MULTIPLY_ADD", poly, tt, coef)
    poly = t.f("MULTIPLY", poly, tt)
    # erf(|z|) = 1 - tail, so 1 + erf(z) is 2 - tail (z >= 0) or tail (z < 0): no
    # cancellation in float32 for large negative x (gelu(-6) is -6e-9, not 0)
    tail = t.f("MULTIPLY", poly, t.f("EXPONENT", t.f("MULTIPLY", t.f("MULTIPLY", az, az), -1.0)))
    one_plus_erf = t.switch("FLOAT", t.cmp("LESS_THAN", z, 0.0, "FLOAT"),
                            t.f("SUBTRACT", 2.0, tail), tail)
    branches = {
        "none": x,
        "relu": t.f("MAXIMUM", x, 0.0),
        "gelu": t.f("MULTIPLY", t.f("MULTIPLY", x, one_plus_erf), 0.5),
        "sigmoid": sigmoid(x),
        "silu": t.f("MULTIPLY", x, sigmoid(x)),
        "tanh": t.f("TANH", x),
        "x**2": t.f("MULTIPLY", x, x),
        "x/k": t.f("DIVIDE", x, k),
        "x/sqrt(k)": t.f("DIVIDE", x, t.f("SQRT", k)),
    }
    assert tuple(branches) == POINTWISE_EPILOGUES
    switch = t.node("GeometryNodeIndexSwitch", {"data_type": "FLOAT"})
    while len(switch.index_switch_items) < len(branches):
        switch.index_switch_items.new()
    t.set(switch.inputs["Index"], gin.outputs["Epilogue"])
    for n, sock in enumerate(branches.values()):
        t.set(switch.inputs[n + 1], sock)
    gout = t.node("NodeGroupOutput")
    t.link(switch.outputs[0], gout.inputs["Value"])
    return group


def _colour(t, o, geometry, value, selection=None):
    """Store color and size for `value` (a field on `geometry`) from the colour table; size 0
    outside `selection`. (The table row is recomputed for each sample: math costs less than
    storing and reading back an attribute.)"""
    lo, n = o["Absmin"], o["Table Size"]
    vol = t.node("ShaderNodeClamp", Value=t.f("DIVIDE", t.f("SUBTRACT", t.f("ABSOLUTE", value), lo),
                                              t.f("SUBTRACT", o["Absmax"], lo)),
                 Min=0.0, Max=1.0).outputs[0]
    row = t.f("ROUND", t.f("MULTIPLY", t.f("SQRT", vol), t.i("SUBTRACT", n, 1)))
    positive = t.cmp("GREATER_THAN", value, 0.0, "FLOAT")
    entry = t.f("ADD", row, t.switch("INT", positive, 0, n))
    drawn = t.b("NOT", t.cmp("EQUAL", value, 0.0, "FLOAT"))        # zero is not drawn
    if selection is not None:
        drawn = t.b("AND", drawn, selection)
    index = t.switch("INT", drawn, -1, entry)           # -1 samples as 0: size 0
    table = t.node("GeometryNodeObjectInfo", Object=o["Colours"]).outputs["Geometry"]
    colour = t.sample(table, t.named("color", "FLOAT_COLOR"), index, "FLOAT_COLOR")
    geometry = t.store(geometry, "color", colour, "FLOAT_COLOR")
    return t.store(geometry, "size", t.sample(table, t.named("size"), index))


# --- products ----------------------------------------------------------------------------------

def _swept_index(t, o, prefix: str, slot, step):
    """Index along an axis: the slot itself, or slot * block + (step // div) % mod if swept."""
    local = t.i("FLOORED_MODULO", t.i("DIVIDE_FLOOR", step, o[f"{prefix} Div"]), o[f"{prefix} Mod"])
    swept = t.i("MULTIPLY_ADD", slot, o[f"{prefix} Block"], local)
    return t.switch("INT", o[f"{prefix} Sweep"], slot, swept)


def _active(t, o):
    step = o[STEP]
    return t.b("AND", t.cmp("GREATER_EQUAL", step, 0), t.cmp("LESS_THAN", step, o["Steps"]))


def products_group():
    """Points for the products in flight at `Step`; attributes value, color, size, i, j, k."""
    group = _existing(PRODUCTS_GROUP, VERSION)
    if group is not None:
        return group
    group = _new_group(PRODUCTS_GROUP, VERSION)
    _interface(group, PRODUCTS_INPUTS_SPEC)
    t = _Net(group)
    gin = t.node("NodeGroupInput")
    o = gin.outputs
    step = o[STEP]
    pj, pk, pi = o["J Points"], o["K Points"], o["I Points"]
    pjk = t.i("MULTIPLY", pj, pk)
    count = t.switch("INT", _active(t, o), 0, t.i("MULTIPLY", pjk, pi))
    p = t.index()
    idx = {"i": _swept_index(t, o, "I", t.i("DIVIDE_FLOOR", p, pjk), step),
           "j": _swept_index(t, o, "J", t.i("FLOORED_MODULO", p, pj), step),
           "k": _swept_index(t, o, "K", t.i("FLOORED_MODULO", t.i("DIVIDE_FLOOR", p, pj), pk),
                             step)}
    # position: base + sum over axes of (index + (index // block) * gap) * step vector
    pos = o["Base"]
    for a, vec in (("i", "Step I"), ("j", "Step J"), ("k", "Step K")):
        shifted = t.f("MULTIPLY_ADD", t.i("DIVIDE_FLOOR", idx[a], o[f"{a.upper()} Block"]),
                      o["Gap"], idx[a])
        pos = t.v("ADD", pos, t.v("SCALE", o[vec], shifted))
    geo = t.node("GeometryNodePoints", Count=count, Position=pos, Radius=0.1).outputs["Points"]
    for a in "ijk":
        geo = t.store(geo, a, idx[a], "INT")
    left = t.node("GeometryNodeObjectInfo", Object=o["Left"]).outputs["Geometry"]
    right = t.node("GeometryNodeObjectInfo", Object=o["Right"]).outputs["Geometry"]
    value = t.named("value")
    lv = t.sample(left, value, t.i("MULTIPLY_ADD", idx["i"], o["K Cells"], idx["k"]))
    rv = t.sample(right, value, t.i("MULTIPLY_ADD", idx["k"], o["J Cells"], idx["j"]))
    geo = t.store(geo, "value", t.f("MULTIPLY", lv, rv))
    valid = t.b("AND", t.b("AND", t.cmp("LESS_THAN", idx["i"], o["I Cells"]),
                           t.cmp("LESS_THAN", idx["j"], o["J Cells"])),
                t.cmp("LESS_THAN", idx["k"], o["K Cells"]))
    geo = _colour(t, o, geo, t.named("value"), valid)
    gout = t.node("NodeGroupOutput")
    t.link(geo, gout.inputs[0])
    return group


# --- result: written cells and partial sums ------------------------------------------------------

def result_group():
    """Before mm_cells on a result (or k-plane) object: size 0 for cells not written at `Step`;
    for accumulating sweeps the running partial sums as value/color/size."""
    group = _existing(RESULT_GROUP, VERSION)
    if group is not None:
        return group
    group = _new_group(RESULT_GROUP, VERSION)
    _interface(group, RESULT_INPUTS_SPEC)
    t = _Net(group)
    gin = t.node("NodeGroupInput")
    o = gin.outputs
    step = o[STEP]
    running = _active(t, o)
    done = t.cmp("GREATER_EQUAL", step, o["Steps"])
    accumulate = t.b("AND", running, o["Accumulate"])

    def seq_of(row, col):
        """The local step at which cell (row, col) is written."""
        by_row = t.i("MULTIPLY", t.i("FLOORED_MODULO", row, o["Row Block"]), o["Row Coef"])
        by_col = t.i("MULTIPLY", t.i("FLOORED_MODULO", col, o["Col Block"]), o["Col Coef"])
        return t.i("ADD", by_row, by_col)

    p = t.index()
    col = t.i("FLOORED_MODULO", p, o["Cols"])
    row = t.i("FLOORED_MODULO", t.i("DIVIDE_FLOOR", p, o["Cols"]), o["Rows"])

    # Partial sums: sum over q < k blocks * min(step + 1, k block) of L[i,k] * R[k,j] with
    # k = (q % k blocks) * k block + q // k blocks, taken where q // k blocks < the cell's
    # count (step - seq + 1, at most k block) and k < depth. Row, column and count are stored
    # first so the loop reads them instead of re-evaluating their fields every iteration.
    geo = o["Geometry"]
    prep = t.store(geo, "mm_row", row, "INT")
    prep = t.store(prep, "mm_col", col, "INT")
    r, c = t.named("mm_row", "INT"), t.named("mm_col", "INT")
    kcount = t.i("MINIMUM", t.i("MAXIMUM", t.i("ADD", t.i("SUBTRACT", step, seq_of(r, c)), 1), 0),
                 o["K Block"])
    prep = t.store(prep, "mm_count", kcount, "INT")
    prep = t.store(prep, "mm_partial", 0.0)
    iterations = t.i("MULTIPLY", o["K Blocks"], t.i("MINIMUM", t.i("ADD", step, 1), o["K Block"]))
    rin = t.node("GeometryNodeRepeatInput")
    rout = t.node("GeometryNodeRepeatOutput")
    rin.pair_with_output(rout)
    t.set(rin.inputs["Iterations"], iterations)
    t.link(prep, rin.inputs["Geometry"])
    q = rin.outputs["Iteration"]
    lk = t.i("DIVIDE_FLOOR", q, o["K Blocks"])
    k = t.i("MULTIPLY_ADD", t.i("FLOORED_MODULO", q, o["K Blocks"]), o["K Block"], lk)
    left = t.node("GeometryNodeObjectInfo", Object=o["Left"]).outputs["Geometry"]
    right = t.node("GeometryNodeObjectInfo", Object=o["Right"]).outputs["Geometry"]
    value = t.named("value")
    lv = t.sample(left, value, t.i("MULTIPLY_ADD", r, o["Depth"], k))
    rv = t.sample(right, value, t.i("MULTIPLY_ADD", k, o["Cols"], c))
    take = t.b("AND", t.cmp("LESS_THAN", lk, t.named("mm_count", "INT")),
               t.cmp("LESS_THAN", k, o["Depth"]))
    acc = t.f("ADD", t.named("mm_partial"), t.f("MULTIPLY", lv, rv))
    t.link(t.store(rin.outputs["Geometry"], "mm_partial", acc, selection=take),
           rout.inputs["Geometry"])
    summed = t.store(rout.outputs["Geometry"], "value", t.subgroup(
        pointwise_group(), Value=t.named("mm_partial"), Epilogue=o["Epilogue"],
        K=o["Depth"]).outputs["Value"])
    summed = _colour(t, o, summed, t.named("value"))
    for name in ("mm_row", "mm_col", "mm_count", "mm_partial"):
        summed = t.node("GeometryNodeRemoveAttribute", Geometry=summed, Name=name).outputs[0]
    geo = t.switch("GEOMETRY", accumulate, geo, summed)

    written = t.b("AND", running, t.cmp("LESS_EQUAL", seq_of(row, col), step))
    shown = t.switch("BOOLEAN", done, written, o["Keep When Done"])
    geo = t.store(geo, "size", 0.0, selection=t.b("NOT", shown))
    gout = t.node("NodeGroupOutput")
    t.link(geo, gout.inputs[0])
    return group


# --- highlight ------------------------------------------------------------------------------------

def highlight_group():
    """The operand cells in flight, drawn a little larger and brighter over the operand (so the
    operand itself stays static and costs nothing per frame): cell (r, c) with r (and/or c)
    swept like a product axis. Attributes value, color (+ Boost), size (* Grow)."""
    group = _existing(HIGHLIGHT_GROUP, VERSION)
    if group is not None:
        return group
    group = _new_group(HIGHLIGHT_GROUP, VERSION)
    _interface(group, HIGHLIGHT_INPUTS_SPEC)
    t = _Net(group)
    gin = t.node("NodeGroupInput")
    o = gin.outputs
    step = o[STEP]
    any_swept = t.b("OR", o["Row Sweep"], o["Col Sweep"])
    pc = o["Col Points"]
    count = t.switch("INT", t.b("AND", _active(t, o), any_swept), 0,
                     t.i("MULTIPLY", o["Row Points"], pc))
    points = t.node("GeometryNodePoints", Count=count, Radius=0.1)
    p = t.index()
    r = _swept_index(t, o, "Row", t.i("DIVIDE_FLOOR", p, pc), step)
    c = _swept_index(t, o, "Col", t.i("FLOORED_MODULO", p, pc), step)
    valid = t.b("AND", t.cmp("LESS_THAN", r, o["Row Cells"]), t.cmp("LESS_THAN", c, o["Col Cells"]))
    geo = t.store(points.outputs["Points"], "mm_src",
                  t.switch("INT", valid, -1, t.i("MULTIPLY_ADD", r, o["Col Cells"], c)), "INT")
    src_index = t.named("mm_src", "INT")
    source = t.node("GeometryNodeObjectInfo", Object=o["Source"]).outputs["Geometry"]

    def sample(field, data_type):
        return t.sample(source, field, src_index, data_type)

    position = sample(t.node("GeometryNodeInputPosition").outputs[0], "FLOAT_VECTOR")
    geo = t.store(geo, "value", sample(t.named("value"), "FLOAT"))
    bright = t.node("ShaderNodeMix", {"data_type": "RGBA", "blend_type": "ADD"})
    t.set(bright.inputs["Factor"], 1.0)
    t.set(bright.inputs[6], sample(t.named("color", "FLOAT_COLOR"), "FLOAT_COLOR"))
    boost = o["Boost"]
    t.set(bright.inputs[7], t.node("FunctionNodeCombineColor", {"mode": "RGB"}, Red=boost,
                                   Green=boost, Blue=boost, Alpha=0.0).outputs["Color"])
    geo = t.store(geo, "color", bright.outputs[2], "FLOAT_COLOR")
    size = t.f("MULTIPLY", sample(t.named("size"), "FLOAT"), o["Grow"])
    in_range = t.cmp("GREATER_EQUAL", src_index, 0)
    geo = t.store(geo, "size", t.switch("FLOAT", in_range, 0.0, size))
    geo = t.node("GeometryNodeSetPosition", Geometry=geo, Position=position).outputs["Geometry"]
    geo = t.node("GeometryNodeRemoveAttribute", Geometry=geo, Name="mm_src").outputs[0]
    gout = t.node("NodeGroupOutput")
    t.link(geo, gout.inputs[0])
    return group
