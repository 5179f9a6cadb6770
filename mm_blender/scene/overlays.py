"""The lens, the spotlight and the axes in a build (plans from core/overlays.py, node groups
from scene/lens_nodes.py). A handful of objects whatever the number of cells:

    <build>:<key>:points    hidden, sharing each matrix's mesh: what the lens and the
                            spotlight read (a cells object's own evaluated geometry is its
                            cubes or spheres)
    <build>:lens            Empty the user moves (or keyframes); X scale scales the radius
    <build>:lens_numbers    the numbers, one `mm_lens.<key>` modifier per matrix
    <build>:lens_glyphs     hidden: the digits (and nan/inf letters), filled once, that the
                            numbers instance
    <build>:spotlight       Empty on the spotlit result cell (keyframe it to walk cells)
    <build>:spotlight_products  the cell's k products inside the cube (interior spotlight)
    <build>:axes, <build>:axes_heads, <build>:label:axis.i/j/k   arrows and letters

Every matrix object gets a `mm_spotlight` modifier before `mm_cells` when a spotlight is set.
`add_lens(collection)` adds a lens to a build that has none (the panel's "Add Lens").
"""
from __future__ import annotations

from typing import Callable

import bpy
import numpy as np

from ..core.plan import AxesPlan, LensPlan, SpotlightPlan, TrianglePlan
from ..errors import MMError
from . import cells, decor, lens_nodes, material, nodes

LENS_MODIFIER = "mm_lens"
SPOTLIGHT_MODIFIER = "mm_spotlight"
# The loupe's disc behind the numbers, per look: under light digits dark, under dark light.
DISC_COLOR = {"dark": (0.0, 0.0, 0.0, 0.75), "paper": (1.0, 1.0, 1.0, 0.85)}
Tag = Callable[[object, str], object]


def lens_lift(plan: LensPlan) -> float:
    """How far the loupe is brought toward the camera: twice as far as it reaches across
    (numbers included), so even a face seen at a slant stays behind the whole loupe (the
    node group keeps it within 0.4 of the way to the camera)."""
    return float(2 * (plan.radius * plan.spread + 2 * plan.text_size) + 1.0)


def _collection_tag(collection) -> Tag:
    """Tag like build does (so removing the build removes these) for objects added later."""
    def tag(id_, name):
        for key in ("mm_build", "mm_build_token"):
            if key in collection:
                id_[key] = collection[key]
        data = getattr(id_, "data", None)
        if data is not None and id_.type != "EMPTY" and data.get("mm_build") is None:
            tag(data, name)
        return id_
    return tag


def _objects(collection) -> list:
    out = list(collection.objects)
    for child in collection.children:
        out += [o for o in _objects(child) if o not in out]
    return out


def matrix_objects(collection) -> list:
    """The build's cells objects, in plan order (leaves and results)."""
    return [o for o in _objects(collection)
            if o.get("mm_role") in ("leaf", "result") and "mm_key" in o]


def _name(collection, what: str) -> str:
    return f"{collection.get('mm_build', collection.name)}:{what}"


def points_object(collection, obj, tag: Tag):
    """The hidden object sharing `obj`'s mesh (made once per matrix)."""
    name = _name(collection, f"{obj['mm_key']}:points")
    for o in _objects(collection):
        if o.get("mm_role") == "points" and o.get("mm_points_of") == obj.get("mm_key"):
            return o
    pts = bpy.data.objects.new(name, obj.data)
    collection.objects.link(pts)
    tag(pts, name)
    pts["mm_role"] = "points"
    pts["mm_points_of"] = obj["mm_key"]
    pts.hide_viewport = pts.hide_render = pts.hide_select = True
    return pts


def _empty(collection, what: str, tag: Tag, *, location, display: str, size: float, role: str):
    name = _name(collection, what)
    obj = bpy.data.objects.new(name, None)
    obj.empty_display_type = display
    obj.empty_display_size = float(size)
    obj.location = [float(v) for v in location]
    collection.objects.link(obj)
    tag(obj, name)
    obj["mm_role"] = role
    return obj


# --- lens ---------------------------------------------------------------------------------------

def grid_of(positions: np.ndarray, rows: int, cols: int) -> dict:
    """The lens inputs describing a matrix's grid, read from its cell positions (row 0 and
    column 0 only): cell (i, j) sits at origin + (j + (j // col block) * col gap) * col axis
    + (i + ...) * row axis, as the layout places it."""
    pos = np.asarray(positions, np.float64).reshape(rows, cols, 3)

    def axis(line: np.ndarray):
        if len(line) < 2:
            return np.zeros(3), len(line) or 1, 0.0
        steps = np.linalg.norm(np.diff(line, axis=0), axis=1)
        unit = steps.min()
        direction = (line[1] - line[0]) / (steps[0] or 1.0)
        gaps = np.flatnonzero(steps > unit * 1.5)
        block = int(gaps[0] + 1) if len(gaps) else len(line)
        gap = float(steps[gaps[0]] / unit - 1.0) if len(gaps) else 0.0
        return direction / (unit or 1.0), block, gap

    col_axis, col_block, col_gap = axis(pos[0, :])
    row_axis, row_block, row_gap = axis(pos[:, 0])
    # a single row or column: any direction across it will do (the window is that one line)
    return {"Origin": tuple(map(float, pos[0, 0])), "Col Axis": tuple(map(float, col_axis)),
            "Row Axis": tuple(map(float, row_axis)), "Rows": int(rows), "Cols": int(cols),
            "Row Block": int(row_block), "Col Block": int(col_block),
            "Row Gap": float(row_gap), "Col Gap": float(col_gap)}


def lens(plan: LensPlan, collection, camera, look: str, tag: Tag | None = None):
    """The lens Empty and its numbers object. Returns (empty, numbers)."""
    tag = tag or _collection_tag(collection)
    if any(o.get("mm_role") == "lens" for o in _objects(collection)):
        raise MMError(f"build {collection.name!r} already has a lens; move it instead")
    empty = _empty(collection, "lens", tag, location=plan.position, display="SPHERE",
                   size=plan.radius, role="lens")
    name = _name(collection, "lens_numbers")
    mesh = bpy.data.meshes.new(name)
    numbers = bpy.data.objects.new(name, mesh)
    collection.objects.link(numbers)
    tag(numbers, name)
    numbers["mm_role"] = "lens_numbers"
    numbers.visible_shadow = False
    mat = material.label_material(look)
    numbers.data.materials.append(mat)
    name = _name(collection, "lens_glyphs")
    glyphs = bpy.data.objects.new(name, bpy.data.meshes.new(name))
    collection.objects.link(glyphs)
    tag(glyphs, name)
    glyphs["mm_role"] = "lens_glyphs"
    glyphs.hide_viewport = glyphs.hide_render = glyphs.hide_select = True
    nodes.add_modifier(glyphs, lens_nodes.glyphs_group(), "mm_lens_glyphs",
                       lens_nodes.GLYPHS_INPUTS, {"Material": mat})
    glyphs.data.materials.append(mat)
    for n, obj in enumerate(matrix_objects(collection)):
        mod = nodes.add_modifier(numbers, lens_nodes.lens_group(),
                                 f"{LENS_MODIFIER}.{obj['mm_key']}", lens_nodes.LENS_INPUTS, {
                                     **grid_of(cells.read_positions(obj), int(obj["mm_rows"]),
                                               int(obj["mm_cols"])),
                                     "Source": points_object(collection, obj, tag), "Lens": empty,
                                     "Radius": float(plan.radius),
                                     "Text Size": float(plan.text_size),
                                     "Decimals": int(plan.decimals), "Camera": camera,
                                     "Matrix": n, "Glyphs": glyphs,
                                     "Spread": float(plan.spread),
                                     "Lift": lens_lift(plan), "Disc": True,
                                     "Disc Material": material.decor_material(),
                                     "Disc Color": DISC_COLOR[look]})
        mod["mm_matrix"] = obj["mm_key"]
    # lens_matrix n is the n-th of these matrix keys (keys, not names: a rebuild renames)
    numbers["mm_matrices"] = [o["mm_key"] for o in matrix_objects(collection)]
    return empty, numbers


def add_lens(collection, *, radius: float = 3.0, text_size: float = 0.84, decimals: int = 2,
             spread: float = 3.15, location=None, scene=None):
    """The panel's "Add Lens": a lens over the root result's middle cell (or `location`)."""
    scene = scene or bpy.context.scene
    if collection is None or not collection.get("mm_root"):
        raise MMError("Add Lens needs a built mm scene: build one first")
    objs = matrix_objects(collection)
    if not objs:
        raise MMError(f"build {collection.name!r} has no cells")
    if location is None:
        root = next((o for o in objs if o.get("mm_role") == "result" and o.get("mm_path") == ""),
                    objs[-1])
        pos = cells.read_positions(root)
        rows, cols = int(root["mm_rows"]), int(root["mm_cols"])
        location = pos[(rows // 2) * cols + cols // 2]
    cams = [o for o in _objects(collection) if o.type == "CAMERA"]
    camera = cams[0] if cams else scene.camera
    plan = LensPlan(position=np.asarray(location, np.float64), radius=float(radius),
                    text_size=float(text_size), decimals=int(decimals), spread=float(spread))
    return lens(plan, collection, camera, collection.get("mm_look", "dark"))


# --- spotlight ----------------------------------------------------------------------------------

def _cells_modifier_like(obj, like, rotation):
    mod = like.modifiers.get(nodes.CELLS_MODIFIER)
    ids = nodes.CELLS_INPUTS
    mat = mod[ids["Material"]] if mod else None
    nodes.add_modifier(obj, nodes.cells_group(), nodes.CELLS_MODIFIER, ids, {
        "Cell Scale": 1.0, "Shape": int(mod[ids["Shape"]]) if mod else 0,
        "Cell Rotation": rotation, "Material": mat})
    if mat is not None:
        obj.data.materials.append(mat)
    obj.color = (0.0, 0.0, 0.0, 1.0)


def spotlight(plan: SpotlightPlan, cube, collection, tag: Tag | None = None):
    """The spotlight Empty, a `mm_spotlight` modifier before `mm_cells` on every matrix, and
    with `plan.interior` the products object. Returns the Empty."""
    tag = tag or _collection_tag(collection)
    objs = {o["mm_key"]: o for o in matrix_objects(collection)}
    result = objs[plan.result]
    empty = _empty(collection, "spotlight", tag, location=plan.position, display="CUBE",
                   size=0.5, role="spotlight")
    empty["mm_spotlight_of"] = result.name
    result_points = points_object(collection, result, tag)
    roles = {plan.left: lens_nodes.ROLE_LEFT, plan.right: lens_nodes.ROLE_RIGHT,
             plan.result: lens_nodes.ROLE_RESULT}
    for key, obj in objs.items():
        mod = nodes.add_modifier(obj, lens_nodes.spotlight_group(), SPOTLIGHT_MODIFIER,
                                 lens_nodes.SPOTLIGHT_INPUTS, {
                                     "Spotlight": empty, "Result": result_points,
                                     "Result Cols": int(result["mm_cols"]),
                                     "Role": roles.get(key, lens_nodes.ROLE_OTHER),
                                     "Cols": int(obj["mm_cols"]), "Dim": float(plan.dim)})
        # before the cells instancer (after a sweep's modifier, which animate puts first)
        obj.modifiers.move(len(obj.modifiers) - 1, len(obj.modifiers) - 2)
        del mod
    if plan.interior:
        _interior(plan, cube, collection, empty, result, objs, tag)
    return empty


def _interior(plan, cube, collection, empty, result, objs, tag) -> None:
    name = _name(collection, "spotlight_colours")
    mesh = bpy.data.meshes.new(name)
    sizes = np.asarray(plan.table_sizes, np.float32)
    cells.fill_mesh(mesh, np.zeros((len(sizes), 3), np.float32), np.zeros(len(sizes), np.float32),
                    plan.table_colors, sizes)
    table = bpy.data.objects.new(name, mesh)
    collection.objects.link(table)
    tag(table, name)
    table["mm_role"] = "colour_table"
    table.hide_viewport = table.hide_render = table.hide_select = True

    name = _name(collection, "spotlight_products")
    obj = bpy.data.objects.new(name, bpy.data.meshes.new(name))
    collection.objects.link(obj)
    tag(obj, name)
    obj["mm_role"] = "spotlight_products"
    obj["mm_matmul"] = result.name
    nodes.add_modifier(obj, lens_nodes.spotlight_products_group(), SPOTLIGHT_MODIFIER,
                       lens_nodes.SPOTLIGHT_PRODUCTS_INPUTS, {
                           "Spotlight": empty, "Result": points_object(collection, result, tag),
                           "Left": points_object(collection, objs[plan.left], tag),
                           "Right": points_object(collection, objs[plan.right], tag),
                           "Rows": int(cube.rows), "Cols": int(cube.cols), "Depth": int(cube.depth),
                           "I Block": int(cube.block_i), "J Block": int(cube.block_j),
                           "K Block": int(cube.block_k), "Gap": float(cube.gap),
                           "Base": tuple(map(float, cube.base)),
                           "Step I": tuple(map(float, cube.di)),
                           "Step J": tuple(map(float, cube.dj)),
                           "Step K": tuple(map(float, cube.dk)),
                           "Absmin": plan.products_absmin, "Absmax": plan.products_absmax,
                           "Colours": table, "Table Size": len(sizes) // 2})
    rot = result.modifiers[nodes.CELLS_MODIFIER][nodes.CELLS_INPUTS["Cell Rotation"]]
    _cells_modifier_like(obj, result, tuple(rot))


# --- axes ---------------------------------------------------------------------------------------

def _cone(tip, direction, length, radius, sides=12) -> np.ndarray:
    """(2 * sides, 3, 3) triangles of a closed cone ending at `tip`."""
    d = np.asarray(direction, np.float64)
    a = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(d, a)
    t = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    base = np.asarray(tip) - d * length
    ring = base + radius * (np.cos(t)[:, None] * a + np.sin(t)[:, None] * b)
    nxt = np.roll(ring, -1, axis=0)
    sides_ = np.stack([ring, nxt, np.broadcast_to(tip, ring.shape)], axis=1)
    caps = np.stack([nxt, ring, np.broadcast_to(base, ring.shape)], axis=1)
    return np.concatenate([sides_, caps])


def axes(plan: AxesPlan, collection, camera, look: str, tag: Tag | None = None) -> list:
    """Shafts (tubes) and heads (cones) of the i, j, k arrows; their letters are labels of
    the plan (core/overlays.axis_labels), placed with the other texts."""
    tag = tag or _collection_tag(collection)
    head = plan.length * 0.12
    shafts, heads, head_colours = [], [], []
    for d, rgba in zip(plan.directions, plan.colors):
        shafts.append([plan.origin, plan.origin + d * (plan.length - head)])
        tri = _cone(plan.origin + d * plan.length, d, head, head * 0.4)
        heads.append(tri)
        head_colours.append(np.broadcast_to(np.asarray(rgba, np.float32), (len(tri), 4)))
    decor_mat = material.decor_material()
    name = _name(collection, "axes")
    thickness = head * 0.12
    out = [tag(decor.lines_object(name, np.asarray(shafts, np.float32),
                                  np.asarray(plan.colors, np.float32),
                                  np.full(3, thickness, np.float32), material=decor_mat,
                                  collection=collection), name)]
    name = _name(collection, "axes_heads")
    out.append(tag(decor.triangles_object(
        name, [TrianglePlan("axes_heads", np.concatenate(heads).astype(np.float32),
                            np.concatenate(head_colours).astype(np.float32))],
        material=decor_mat, collection=collection), name))
    for obj in out:
        obj["mm_role"] = "axes"
    return out


def add(plan, collection, camera, look: str, tag: Tag | None = None) -> None:
    """What the plan asks for: lens, spotlight, axes (build calls this)."""
    if plan.lens is not None:
        lens(plan.lens, collection, camera, look, tag)
    if plan.spotlight is not None:
        cube = next(c for c in plan.cubes if c.key == plan.spotlight.result)
        spotlight(plan.spotlight, cube, collection, tag)
    if plan.axes is not None:
        axes(plan.axes, collection, camera, look, tag)


def walk_spotlight(collection, steps) -> None:
    """Keyframe the build's spotlight through result cells: `steps` = [(frame, row, col)],
    held (constant) from each frame to the next, so a video walks through them."""
    empty = next((o for o in _objects(collection) if o.get("mm_role") == "spotlight"), None)
    if empty is None:
        raise MMError(f"build {collection.name!r} has no spotlight: set deco.spotlight_row "
                      "and spotlight_col and build again")
    result = bpy.data.objects.get(empty.get("mm_spotlight_of", ""))
    rows, cols = int(result["mm_rows"]), int(result["mm_cols"])
    positions = cells.read_positions(result)
    steps = list(steps)
    for frame, row, col in steps:      # all checked before any keyframe is written
        if not (0 <= row < rows and 0 <= col < cols):
            raise MMError(f"spotlight cell ({row}, {col}) is outside {result['mm_name']!r} "
                          f"({rows}x{cols})")
    for frame, row, col in steps:
        empty.location = [float(v) for v in positions[row * cols + col]]
        empty.keyframe_insert("location", frame=int(frame))
    for fc in _fcurves(empty):
        for key in fc.keyframe_points:
            key.interpolation = "CONSTANT"


def _fcurves(obj):
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return []
    if hasattr(ad.action, "fcurves") and bpy.app.version < (5, 0, 0):
        return list(ad.action.fcurves)
    from bpy_extras import anim_utils
    bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    return list(bag.fcurves) if bag is not None else []
