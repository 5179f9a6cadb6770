"""The panel's state, `scene.mm_blender`: PropertyGroups that mirror a preset table, and the
plain functions that move between the two (`settings_from_dict`, `dict_from_settings`) and
keep the node tree in step with the expression. Nothing here draws.

(No `from __future__ import annotations` here: Blender reads the property annotations.)
"""
import dataclasses
import json
import struct

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)

from ..core import expr as exprmod
from ..core import spec as specmod
from ..errors import MMError

SCENE_ATTR = "mm_blender"      # bpy.types.Scene.mm_blender

GROUP_LABELS = {
    "single": "Single matmul", "expressions": "Expressions", "partitions": "Partitions",
    "attention": "Attention", "lora": "LoRA", "other": "Other",
}
LEAF_INITS = specmod.leaf_inits()
PLACEMENT_KEYS = ("polarity", "left_placement", "right_placement", "result_placement")
ALWAYS_WRITTEN_LEAF_KEYS = ("h", "w", "init")   # saved presets read better with the shape


def _default(cls, name):
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def _items(choices, descriptions=None):
    descriptions = descriptions or {}
    return [(c, c, descriptions.get(c, "")) for c in choices]


def settings_of(scene):
    """The panel state of a scene."""
    return getattr(scene, SCENE_ATTR)


# --- update callbacks (keep the node rows in step; no scene changes) ------------------------

def _on_expr_changed(self, context):
    sync_tree(self)


def _on_leaf_shape_changed(self, context):
    settings = settings_of(self.id_data)
    update_shapes(settings)


def _preset_items(self, context):
    from . import presets as ui_presets
    return ui_presets.enum_items()


def _first_preset_number() -> int:
    """The picker's default: the first built-in preset (a dynamic enum's default is its number)."""
    from . import presets as ui_presets
    try:
        first = ui_presets.builtin()
    except MMError:
        return 0
    return ui_presets.item_number(first[0].name) if first else 0


# --- property helpers: the default always comes from the spec's dataclass --------------------

def _float(cls, key, name, description="", **kw):
    return FloatProperty(name=name, description=description, default=_default(cls, key), **kw)


def _int(cls, key, name, description="", **kw):
    return IntProperty(name=name, description=description, default=_default(cls, key), **kw)


def _bool(cls, key, name, description=""):
    return BoolProperty(name=name, description=description, default=_default(cls, key))


def _str(cls, key, name, description="", **kw):
    return StringProperty(name=name, description=description, default=_default(cls, key), **kw)


def _enum(cls, key, name, choices, description="", descriptions=None):
    return EnumProperty(name=name, description=description, items=_items(choices, descriptions),
                        default=_default(cls, key))


_Leaf, _Matmul, _Place = specmod.LeafSpec, specmod.MatmulSpec, specmod.Placement
_Layout, _Blocks, _Anim = specmod.LayoutSpec, specmod.BlocksSpec, specmod.AnimSpec
_Viz, _Deco, _Look, _Model = specmod.VizSpec, specmod.DecoSpec, specmod.LookSpec, specmod.ModelSpec


# --- per-matrix settings ---------------------------------------------------------------------

class MM_PG_matrix(bpy.types.PropertyGroup):
    """One leaf matrix (a [matrix.NAME] table); `name` is the leaf's name."""
    h: _int(_Leaf, "h", "Rows", "Height (h): number of rows", min=1, max=specmod.MAX_SIDE,
            soft_max=4096, update=_on_leaf_shape_changed)
    w: _int(_Leaf, "w", "Columns", "Width (w): number of columns", min=1, max=specmod.MAX_SIDE,
            soft_max=4096, update=_on_leaf_shape_changed)
    init: _enum(_Leaf, "init", "Initialiser", LEAF_INITS, "How the matrix is filled", {
        "expr": "A formula in i, j, h, w",
        "file": "A .csv, .npy, .npz or .safetensors file",
        "url": "mm's CSV over http(s) (needs online access)",
        "transpose": "The transpose of another leaf",
        "model": "From the real model's attention head (Real Model section)"})
    min: _float(_Leaf, "min", "Min", "Rescale the values to min..max")
    max: _float(_Leaf, "max", "Max", "Rescale the values to min..max")
    dropout: _float(_Leaf, "dropout", "Dropout", "Probability of zeroing each element",
                    min=0.0, max=1.0)
    formula: _str(_Leaf, "formula", "Formula", "For init 'expr', e.g. i * w + j")
    file: _str(_Leaf, "file", "File", "For init 'file': .csv, .npy, .npz, .safetensors",
               subtype="FILE_PATH")
    tensor: _str(_Leaf, "tensor", "Tensor", "Array name inside an .npz or .safetensors file")
    url: _str(_Leaf, "url", "URL", "For init 'url': a CSV over http(s)")
    source: _str(_Leaf, "source", "Source", "For init 'transpose': the leaf to transpose")


class MM_PG_matmul(bpy.types.PropertyGroup):
    """One matmul (a [matmul."NAME"] table); `name` is the matmul's name."""
    epilogue: _enum(_Matmul, "epilogue", "Epilogue", specmod.EPILOGUES, "Applied to the result")
    alg: _enum(_Matmul, "alg", "Algorithm", specmod.ALGORITHMS, "Sweep algorithm of this matmul")
    k_blocks: _int(_Matmul, "k_blocks", "K Blocks", "Partitions along k", min=1, max=64)
    custom_placement: BoolProperty(
        name="Own Placement", description="Place this matmul's arguments itself "
        "(needs the 'custom' layout scheme)", default=False)
    polarity: _enum(_Place, "polarity", "Polarity", specmod.POLARITIES)
    left_placement: _enum(_Place, "left_placement", "Left", specmod.LEFT_PLACEMENTS)
    right_placement: _enum(_Place, "right_placement", "Right", specmod.RIGHT_PLACEMENTS)
    result_placement: _enum(_Place, "result_placement", "Result", specmod.RESULT_PLACEMENTS)


class MM_PG_node(bpy.types.PropertyGroup):
    """One row of the expression tree as drawn in the panel (pre-order, with depth)."""
    kind: EnumProperty(items=[("LEAF", "Matrix", ""), ("MATMUL", "Matmul", "")])
    depth: IntProperty(min=0)
    path: StringProperty()     # "" root, then l/r per step down (as core.expr)
    rows: IntProperty()
    cols: IntProperty()


# --- sections (one per preset table) --------------------------------------------------------

class MM_PG_layout(bpy.types.PropertyGroup):
    scheme: _enum(_Layout, "scheme", "Scheme", specmod.SCHEMES, "", {
        "blocks": "Children flip polarity every generation (mm's default)",
        "zigzag": "Alternate sides", "wheel": "Children copy their parent",
        "custom": "Every matmul places its own arguments"})
    polarity: _enum(_Layout, "polarity", "Polarity", specmod.POLARITIES)
    left_placement: _enum(_Layout, "left_placement", "Left", specmod.LEFT_PLACEMENTS)
    right_placement: _enum(_Layout, "right_placement", "Right", specmod.RIGHT_PLACEMENTS)
    result_placement: _enum(_Layout, "result_placement", "Result", specmod.RESULT_PLACEMENTS)
    gap: _float(_Layout, "gap", "Gap", "Space between faces and blocks", min=0, max=64)
    scatter: _float(_Layout, "scatter", "Scatter", "Extra distance between a child matmul "
                    "and its parent", min=0, max=1024, soft_max=128)
    molecule: _int(_Layout, "molecule", "Molecule", "Scatter only children with at least "
                   "this many matmuls", min=1, max=1000)
    blast: _float(_Layout, "blast", "Blast", "Scatter multiplier count^blast", min=-2, max=2)


class MM_PG_blocks(bpy.types.PropertyGroup):
    i: _int(_Blocks, "i", "I Blocks", "Partitions along i (rows of the result)", min=1, max=64)
    j: _int(_Blocks, "j", "J Blocks", "Partitions along j (columns of the result)", min=1, max=64)
    k: _int(_Blocks, "k", "K Blocks", "Partitions along k (the summed axis)", min=1, max=64)


class MM_PG_anim(bpy.types.PropertyGroup):
    alg: _enum(_Anim, "alg", "Algorithm",
               tuple(a for a in specmod.ALGORITHMS if a != "inherit"),
               "How the products sweep through the cube")
    fuse: _enum(_Anim, "fuse", "Fusion", specmod.FUSIONS)
    speed: _float(_Anim, "speed", "Speed", "Steps per second (mm's speed)", min=0.01, max=1000)
    hide_inputs: _bool(_Anim, "hide_inputs", "Hide Inputs")
    spin: _float(_Anim, "spin", "Spin", "Seconds per camera turn (0: no turntable)")
    frames_per_step: _int(_Anim, "frames_per_step", "Frames per Step", "0: derive from speed",
                          min=0, max=10000)
    seconds: _float(_Anim, "seconds", "Seconds", "Fit the whole sweep into this many seconds "
                    "(0: off)", min=0, max=36000)


class MM_PG_viz(bpy.types.PropertyGroup):
    sensitivity: _enum(_Viz, "sensitivity", "Sensitivity", specmod.SENSITIVITIES,
                       "What range each value is scaled against")
    min_size: _float(_Viz, "min_size", "Min Size", min=0, max=1)
    min_light: _float(_Viz, "min_light", "Min Light", min=0, max=1)
    max_light: _float(_Viz, "max_light", "Max Light", min=0, max=1)
    elem_scale: _float(_Viz, "elem_scale", "Element Scale", min=0.01, max=10)
    zero_hue: _float(_Viz, "zero_hue", "Zero Hue", min=0, max=1)
    hue_gap: _float(_Viz, "hue_gap", "Hue Gap", min=-1, max=1)
    hue_spread: _float(_Viz, "hue_spread", "Hue Spread", min=-1, max=1)
    colormap: _enum(_Viz, "colormap", "Colours", specmod.COLORMAPS)
    cell_shape: _enum(_Viz, "cell_shape", "Cell Shape", specmod.CELL_SHAPES)


class MM_PG_deco(bpy.types.PropertyGroup):
    legends: _float(_Deco, "legends", "Legends", "Size of the matrix names (0: none)",
                    min=0, soft_max=32)
    shape_labels: _bool(_Deco, "shape_labels", "Shape Labels", "I=, K=, J= labels")
    row_guides: _float(_Deco, "row_guides", "Row Guides", "Lightness of the row guide lines "
                       "(0: none)", min=0, soft_max=1)
    flow_guides: _float(_Deco, "flow_guides", "Flow Guides", "Flow guide triangles (0: none)",
                        min=0, soft_max=1)
    outlines: _bool(_Deco, "outlines", "Outlines", "Thin cube outlines")
    lens: _bool(_Deco, "lens", "Lens", "mm's magnifier lens: cells under it show their values")
    lens_size: _float(_Deco, "lens_size", "Lens Size", "mm's lens size: the radius is "
                      f"{specmod.LENS_CELLS_PER_SIZE:g} cells per unit", min=0.01, max=100)
    magnification: _float(_Deco, "magnification", "Magnification", "mm's: how large the "
                          "numbers are drawn", min=0.1, max=100)
    lens_decimals: _int(_Deco, "lens_decimals", "Decimals", "Digits after the point",
                        min=0, max=6)
    lens_row: _int(_Deco, "lens_row", "Lens Row", "Result row the lens starts over "
                   "(-1: the middle)", min=-1)
    lens_col: _int(_Deco, "lens_col", "Lens Column", "Result column the lens starts over "
                   "(-1: the middle)", min=-1)
    spotlight: _float(_Deco, "spotlight", "Spotlight", "mm's spotlight: the rest is dimmed "
                      "to 1 / (1 + this)", min=0, max=100)
    spotlight_row: _int(_Deco, "spotlight_row", "Spotlight Row", "Result row i of the "
                        "spotlit cell (-1: no spotlight)", min=-1)
    spotlight_col: _int(_Deco, "spotlight_col", "Spotlight Column", "Result column j of the "
                        "spotlit cell (-1: no spotlight)", min=-1)
    spotlight_matmul: _str(_Deco, "spotlight_matmul", "Spotlight Matmul", "Whose result "
                           "(empty: the root)")
    interior_spotlight: _bool(_Deco, "interior_spotlight", "Interior Spotlight", "Also the "
                              "cell's k products inside the cube")
    axes: _bool(_Deco, "axes", "Axes", "The i, j, k axis arrows with their letters")


class MM_PG_look(bpy.types.PropertyGroup):
    background: _enum(_Look, "background", "Background", specmod.LOOKS)
    # look.camera as a vector; (0, 0, 0) stands for [] (mm's default viewpoint)
    camera: FloatVectorProperty(name="Camera Direction", size=3, default=(0.0, 0.0, 0.0),
                                description="The mm view's direction from the scene's centre "
                                "to the camera (X right, Y into the screen, Z up); 0, 0, 0: "
                                "mm's default")
    view: _enum(_Look, "view", "View", specmod.VIEWS, "", {
        "mm": "mm's default: from the upper left, in front", "front": "The result face",
        "top": "From above", "iso": "True isometric"})


class MM_PG_model(bpy.types.PropertyGroup):
    model: _str(_Model, "model", "Model", "gpt2, smollm2, minilm or a path")
    layer: _int(_Model, "layer", "Layer", min=0)
    head: _int(_Model, "head", "Head", min=0)
    tokens: _int(_Model, "tokens", "Tokens", min=1)
    text: _str(_Model, "text", "Text", "A text file (empty: the bundled text)",
               subtype="FILE_PATH")
    capture: _str(_Model, "capture", "Capture", "A capture .npz "
                  "(python -m mm_blender capture)", subtype="FILE_PATH")
    rope_theta: _float(_Model, "rope_theta", "RoPE Theta", "Base of the rotary position "
                       "embedding (the rope / rope_t epilogues)", min=1)


class MM_PG_render(bpy.types.PropertyGroup):
    """Render options of the panel (not part of a preset)."""
    resolution_x: IntProperty(name="Width", default=1280, min=4, max=16384)
    resolution_y: IntProperty(name="Height", default=720, min=4, max=16384)
    samples: IntProperty(name="Samples", default=16, min=1, max=65536)
    engine: EnumProperty(name="Engine", items=_items(("cycles", "eevee", "workbench")),
                         default="cycles")
    device: EnumProperty(name="Device", items=_items(("auto", "cpu", "gpu")), default="auto")
    still_path: StringProperty(name="Still", description="Output image (.png, .jpg, .exr, ...)",
                               default="//mm_render.png", subtype="FILE_PATH")
    video: BoolProperty(name="Video", description="One H.264 MP4 file (off: a folder of "
                        "PNG frames)", default=True)
    animation_path: StringProperty(name="Animation", description="Output .mp4 file, or a "
                                   "folder for frames", default="//mm_animation.mp4",
                                   subtype="FILE_PATH")


SECTIONS = {
    "layout": (MM_PG_layout, specmod.LayoutSpec),
    "blocks": (MM_PG_blocks, specmod.BlocksSpec),
    "anim": (MM_PG_anim, specmod.AnimSpec),
    "viz": (MM_PG_viz, specmod.VizSpec),
    "deco": (MM_PG_deco, specmod.DecoSpec),
    "look": (MM_PG_look, specmod.LookSpec),
}


class MM_PG_settings(bpy.types.PropertyGroup):
    """Everything the panel shows: one preset, plus render options and panel-only fields."""
    preset: EnumProperty(name="Preset", description="Built-in and saved presets",
                         items=_preset_items, default=_first_preset_number())
    name: StringProperty(name="Name", description="The scene's name (the collection it builds)",
                         default="untitled")
    description: StringProperty(name="Description", default="")
    group: EnumProperty(name="Group", items=[(g, GROUP_LABELS[g], "") for g in specmod.GROUPS],
                        default="other")
    expr: StringProperty(name="Expression", description="e.g. out = (attn = Q @ K_t) @ V",
                         default="", update=_on_expr_changed)
    expr_error: StringProperty()
    seed: IntProperty(name="Seed", description="Seed of the random initialisers", default=0, min=0)
    nodes: CollectionProperty(type=MM_PG_node)
    node_index: IntProperty(name="Node", default=0, min=0)
    matrices: CollectionProperty(type=MM_PG_matrix)
    matmuls: CollectionProperty(type=MM_PG_matmul)
    layout: PointerProperty(type=MM_PG_layout)
    blocks: PointerProperty(type=MM_PG_blocks)
    anim: PointerProperty(type=MM_PG_anim)
    viz: PointerProperty(type=MM_PG_viz)
    deco: PointerProperty(type=MM_PG_deco)
    look: PointerProperty(type=MM_PG_look)
    use_model: BoolProperty(name="Real Model", description="Take the leaves from a real "
                            "attention head ([model])", default=False)
    model: PointerProperty(type=MM_PG_model)
    exact_floats: StringProperty(description="Loaded values a 32-bit float property rounds "
                                 "(JSON), written back exactly while unchanged", default="{}")
    base_dir: StringProperty(description="Folder relative file paths are read from",
                             default="", subtype="DIR_PATH")
    link: StringProperty(name="mm Link", description="Paste an mm link (?params=...) or its JSON",
                         default="")
    user_preset_name: StringProperty(name="Save As", description="Name of the preset to save",
                                     default="")
    render: PointerProperty(type=MM_PG_render)


# Spec fields this file does not know yet still get a property (and the panel draws them
# at the end of their section), so a new preset key never breaks loading a preset.
_PROPERTY_OF_TYPE = {"float": FloatProperty, "int": IntProperty, "bool": BoolProperty,
                     "str": StringProperty}
EXTRA_FIELDS: dict[str, list[str]] = {}


def _complete(group_cls, spec_cls, skip=()):
    annotations = group_cls.__dict__.get("__annotations__", {})
    extra = []
    for f in dataclasses.fields(spec_cls):
        if f.name in annotations or f.name in skip:
            continue
        make = _PROPERTY_OF_TYPE.get(f.type if isinstance(f.type, str) else f.type.__name__)
        if make is None:
            continue
        annotations[f.name] = make(name=f.name.replace("_", " ").title(), default=f.default)
        extra.append(f.name)
    group_cls.__annotations__ = annotations
    EXTRA_FIELDS[group_cls.__name__] = extra


for _group_cls, _spec_cls in (*SECTIONS.values(), (MM_PG_model, _Model)):
    _complete(_group_cls, _spec_cls)
_complete(MM_PG_matrix, _Leaf, skip=("name",))
_complete(MM_PG_matmul, _Matmul, skip=("name", "placement"))


CLASSES = (MM_PG_matrix, MM_PG_matmul, MM_PG_node, MM_PG_layout, MM_PG_blocks, MM_PG_anim,
           MM_PG_viz, MM_PG_deco, MM_PG_look, MM_PG_model, MM_PG_render, MM_PG_settings)


# --- the expression tree ---------------------------------------------------------------------

def _preorder(node, depth=0):
    yield node, depth
    if isinstance(node, exprmod.MatMul):
        yield from _preorder(node.left, depth + 1)
        yield from _preorder(node.right, depth + 1)


def sync_tree(settings) -> bool:
    """Rebuild the node rows from the expression; make sure every leaf and matmul has its
    settings (existing ones are kept, so a typo and its fix lose nothing). False, with
    `expr_error` set, when the expression does not parse."""
    settings.nodes.clear()
    try:
        tree = exprmod.parse(settings.expr)
    except MMError as e:
        settings.expr_error = str(e)
        return False
    settings.expr_error = ""
    for node, depth in _preorder(tree):
        row = settings.nodes.add()
        row.name = node.name
        row.kind = "MATMUL" if isinstance(node, exprmod.MatMul) else "LEAF"
        row.depth = depth
        row.path = node.path
        table = settings.matmuls if row.kind == "MATMUL" else settings.matrices
        if table.get(node.name) is None:
            table.add().name = node.name
    if settings.node_index >= len(settings.nodes):
        settings.node_index = 0
    update_shapes(settings)
    return True


def update_shapes(settings) -> None:
    """(rows, cols) of every node row: a leaf's own, a matmul's (left rows, right cols)."""
    by_path = {row.path: row for row in settings.nodes}
    for row in reversed(list(settings.nodes)):       # children come after parents in pre-order
        if row.kind == "LEAF":
            leaf = settings.matrices.get(row.name)
            rows, cols = (leaf.h, leaf.w) if leaf else (0, 0)
        else:
            left, right = by_path.get(row.path + "l"), by_path.get(row.path + "r")
            rows = left.rows if left else 0
            cols = right.cols if right else 0
        if (row.rows, row.cols) != (rows, cols):
            row.rows, row.cols = rows, cols


def selected_node(settings):
    """(row, its leaf or matmul settings) for the node picked in the tree, or (None, None)."""
    if not (0 <= settings.node_index < len(settings.nodes)):
        return None, None
    row = settings.nodes[settings.node_index]
    table = settings.matmuls if row.kind == "MATMUL" else settings.matrices
    return row, table.get(row.name)


# --- dict <-> properties ---------------------------------------------------------------------

def as_float(value: float) -> float:
    """The shortest decimal that reads back as the same single-precision value: Blender keeps
    floats in 32 bits, so 0.77 comes back as 0.7699999809; write it as 0.77 again."""
    value = float(value)
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


def _single(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", float(value)))[0]


def _field_default(field):
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def _get(group, field, key, exact):
    value = getattr(group, field.name)
    if isinstance(_field_default(field), list):       # a direction vector; zeros mean []
        vec = [as_float(c) for c in value]
        return vec if any(vec) else []
    if isinstance(value, float):
        original = exact.get(key)
        if original is not None and _single(original) == value:
            return original          # unchanged since loading: the table's exact double
        return as_float(value)
    return value


def _same(value, default) -> bool:
    if isinstance(default, float) or isinstance(value, float):
        return as_float(value) == as_float(default)
    return value == default


def _table(group, cls, where, exact, *, skip=(), always=()) -> dict:
    """Fields of `group` named like the dataclass `cls`: those differing from the defaults."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        value = _get(group, f, f"{where}.{f.name}", exact)
        if f.name in always or not _same(value, _field_default(f)):
            out[f.name] = value
    return out


def _set(group, key, value, where, exact=None):
    if isinstance(value, list):                        # a direction vector; [] means zeros
        value = tuple(value) if value else (0.0, 0.0, 0.0)
    try:
        setattr(group, key, value)
    except (TypeError, ValueError, AttributeError) as e:
        raise MMError(f"{where}.{key}: cannot use {value!r} ({e})") from None
    if exact is not None and isinstance(value, float) and as_float(value) != value:
        exact[f"{where}.{key}"] = value


def _reset(group, cls, skip=()):
    for f in dataclasses.fields(cls):
        if f.name not in skip:
            group.property_unset(f.name)


def dict_from_settings(settings) -> dict:
    """The preset table the panel shows (what a preset TOML would hold). Only leaves and
    matmuls of the current expression are written; defaults are left out, except each
    matrix's shape and initialiser."""
    data = {"name": settings.name, "expr": settings.expr}
    if settings.description:
        data["description"] = settings.description
    if settings.group != "other":
        data["group"] = settings.group
    if settings.seed:
        data["seed"] = settings.seed
    exact = _exact_floats(settings)
    for section, (_, cls) in SECTIONS.items():
        table = _table(getattr(settings, section), cls, section, exact)
        if table:
            data[section] = table
    if settings.use_model:
        data["model"] = _table(settings.model, specmod.ModelSpec, "model", exact)

    try:
        tree = exprmod.parse(settings.expr)
    except MMError:
        return data                 # from_dict reports the expression's error with its column
    matrices = {}
    for leaf in exprmod.leaves(tree):
        if leaf.name in matrices:
            continue
        group = settings.matrices.get(leaf.name)
        matrices[leaf.name] = (_table(group, specmod.LeafSpec, f"matrix.{leaf.name}", exact,
                                      skip=("name",),
                                      always=ALWAYS_WRITTEN_LEAF_KEYS)
                               if group is not None else {})
    if matrices:
        data["matrix"] = matrices
    matmuls = {}
    for node in exprmod.matmuls(tree):
        group = settings.matmuls.get(node.name)
        if group is None or node.name in matmuls:
            continue
        table = _table(group, specmod.MatmulSpec, f"matmul.{node.name}", exact,
                       skip=("name", "placement"))
        if group.custom_placement:
            for key in PLACEMENT_KEYS:
                table[key] = getattr(group, key)
        if table:
            matmuls[node.name] = table
    if matmuls:
        data["matmul"] = matmuls
    return data


def settings_from_dict(settings, data: dict, *, base_dir: str = "") -> None:
    """Fill the panel from a preset table. Validate it first (spec.from_dict): this only
    copies values, and everything not in the table goes back to its default."""
    settings.name = str(data.get("name", "untitled"))
    settings.description = str(data.get("description", ""))
    _set(settings, "group", data.get("group", "other"), "group")
    _set(settings, "seed", data.get("seed", 0), "seed")
    exact = {}
    for section, (_, cls) in SECTIONS.items():
        group = getattr(settings, section)
        _reset(group, cls)
        for key, value in data.get(section, {}).items():
            _set(group, key, value, section, exact)
    _reset(settings.model, specmod.ModelSpec)
    settings.use_model = "model" in data
    for key, value in data.get("model", {}).items():
        _set(settings.model, key, value, "model", exact)

    settings.matrices.clear()
    settings.matmuls.clear()
    settings.node_index = 0
    settings.expr = str(data.get("expr", ""))
    sync_tree(settings)                 # the update callback only fires on a change
    for name, table in data.get("matrix", {}).items():
        group = settings.matrices.get(name) or settings.matrices.add()
        group.name = name
        for key, value in table.items():
            _set(group, key, value, f"matrix.{name}", exact)
    for name, table in data.get("matmul", {}).items():
        group = settings.matmuls.get(name) or settings.matmuls.add()
        group.name = name
        for key, value in table.items():
            _set(group, key, value, f"matmul.{name}", exact)
        group.custom_placement = any(key in table for key in PLACEMENT_KEYS)
    settings.base_dir = str(base_dir or "")
    settings.exact_floats = json.dumps(exact)
    update_shapes(settings)


def _exact_floats(settings) -> dict:
    try:
        exact = json.loads(settings.exact_floats or "{}")
    except ValueError:
        return {}
    return exact if isinstance(exact, dict) else {}
