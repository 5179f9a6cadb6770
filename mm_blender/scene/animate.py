"""Sweeps as native animation: the schedule of core/sweep.py becomes keyframes on Geometry
Nodes inputs (scene/sweep_nodes.py). No frame-change handlers, no Python drivers: a .blend
saved after `animate` plays and renders the same in a Blender without mm_blender.

`animate(plan, spec, collection) -> (frame_start, frame_end)`, after `build(plan)`. Per
animated matmul it adds:

* a products object `<build>:<result key>:products` (custom props `mm_role = "products"`,
  `mm_matmul` = the result object's name): modifier `mm_sweep` (group mm_sweep_products)
  creates the slice in flight, then the shared `mm_cells` instancer. Its evaluated instances
  carry `value` (= L[i,k] * R[k,j]) and the int attributes `i`, `j`, `k`;
* modifier `mm_sweep` (group mm_sweep_result) on the result object, before `mm_cells`: only
  the cells written so far; for vvprod/axpy the running partial sums;
* a highlight object `<build>:<operand key>:highlight` per operand whose rows/columns are
  in flight (not with hide inputs; `mm_role = "highlight"`, `mm_operand`): modifier
  `mm_sweep` (group mm_sweep_highlight) draws those cells brighter (mm adds sRGB 0.5) and a
  little larger over the operand, which stays static and costs nothing per frame;
* with k blocks > 1 (vmprod, mvprod, dotprod) a `<...>:k_planes` object: each k block's
  partial sums (precomputed points) revealed like the result, gone when the sweep ends;
* `<operand>:values` objects sharing the operands' meshes, hidden: Geometry Nodes samples
  them (a cells object's own evaluated geometry has no instances for zeros, so indices
  would not line up).

Keyframes (constant interpolation, one key wherever the matmul's local step changes) sit on
input `Step`, identifier `Socket_2`, of every sweep modifier of a matmul:

    products object   modifiers["mm_sweep"]["Socket_2"]
    result object     modifiers["mm_sweep"]["Socket_2"]
    highlight objects modifiers["mm_sweep"]["Socket_2"]
    k-plane object    modifiers["mm_sweep"]["Socket_2"]

They carry the same keys (value -1 before the matmul starts, its step count once complete);
to retime, scale those F-curves together in the Graph Editor (or change frames per step and
animate again). Hide inputs keyframes `hide_viewport`/`hide_render` of the input matrices;
spin parents the camera to an empty `<build>:camera_pivot` whose Z rotation is keyed with
linear interpolation.
"""
from __future__ import annotations

import math
import time

import bpy
import numpy as np
from mathutils import Matrix

from ..core import colour, overlays
from ..core.evaluate import POINTWISE_EPILOGUES, pointwise_part
from ..core.plan import CubePlan, MatrixPlan, ScenePlan
from ..core.spec import Spec
from ..core.sweep import MatmulSweep, Schedule, make_schedule
from . import cells, nodes, sweep_nodes

SWEEP_MODIFIER = "mm_sweep"
STEP_SOCKET = sweep_nodes.PRODUCTS_INPUTS[sweep_nodes.STEP]        # "Socket_2"
# mm brightens highlighted cells by adding 0x808080 (sRGB 0.5) in its linear working space;
# our highlight cells are drawn over the operand's, so they are a little larger.
HIGHLIGHT_BOOST = float(colour.srgb_to_linear(np.array(0.5)))
HIGHLIGHT_GROW = 1.08

_CONSTANT = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["CONSTANT"].value
_LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


def step_path(modifier: str = SWEEP_MODIFIER) -> str:
    return f'modifiers["{modifier}"]["{STEP_SOCKET}"]'


# --- keyframes ----------------------------------------------------------------------------

def set_keys(id_, data_path: str, frames, values, *, interpolation: str = "CONSTANT",
             index: int = 0):
    """Replace the F-curve at data_path with these keys (written in bulk, no per-key calls)."""
    frames = np.asarray(frames, np.float32)
    values = np.asarray(values, np.float32)
    ad = id_.animation_data or id_.animation_data_create()
    if ad.action is None:
        ad.action = bpy.data.actions.new(f"{id_.name}Action")
    fc = ad.action.fcurve_ensure_for_datablock(id_, data_path, index=index)
    fc.keyframe_points.clear()
    fc.keyframe_points.add(len(frames))
    co = np.empty(2 * len(frames), np.float32)
    co[0::2] = frames
    co[1::2] = values
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("handle_left", co)
    fc.keyframe_points.foreach_set("handle_right", co)
    interp = _CONSTANT if interpolation == "CONSTANT" else _LINEAR
    fc.keyframe_points.foreach_set("interpolation", np.full(len(frames), interp, np.int32))
    fc.update()
    return fc


def _remove_fcurves(id_, prefix: str) -> None:
    ad = id_.animation_data
    if ad is None or ad.action is None:
        return
    from bpy_extras import anim_utils
    bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    if bag is None:
        return
    for fc in [fc for fc in bag.fcurves if fc.data_path.startswith(prefix)]:
        bag.fcurves.remove(fc)


# --- objects ------------------------------------------------------------------------------

def _tag(id_, collection, role: str):
    """Tag like build does, so removing the build removes what animate added."""
    for key in ("mm_build", "mm_build_token"):
        if key in collection:
            id_[key] = collection[key]
    id_["mm_sweep"] = role
    return id_


def _new_object(name: str, mesh, collection, role: str):
    _tag(mesh, collection, role)
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    _tag(obj, collection, role)
    obj["mm_role"] = role
    return obj


def _move_first(obj, modifier) -> None:
    """Put `modifier` before the cells instancer (it was appended last)."""
    with bpy.context.temp_override(object=obj, active_object=obj):
        bpy.ops.object.modifier_move_to_index(modifier=modifier.name, index=0)


def _prepend_modifier(obj, name: str, group, inputs: dict, values: dict):
    mod = nodes.add_modifier(obj, group, name, inputs, values)
    _move_first(obj, mod)
    return mod


def _cells_settings(obj) -> dict:
    """Shape and material of a built cells object, to give new cells the same look."""
    mod = obj.modifiers.get(nodes.CELLS_MODIFIER)
    ids = nodes.CELLS_INPUTS
    return {"Shape": int(mod[ids["Shape"]]) if mod else 0,
            "Material": mod[ids["Material"]] if mod else None}


def _cells_modifier(obj, like, matrix: MatrixPlan):
    s = _cells_settings(like)
    nodes.add_modifier(obj, nodes.cells_group(), nodes.CELLS_MODIFIER, nodes.CELLS_INPUTS, {
        "Cell Scale": 1.0, "Shape": s["Shape"], "Cell Rotation": cells.face_rotation(matrix),
        "Material": s["Material"]})
    if s["Material"] is not None:
        obj.data.materials.append(s["Material"])


def _objects(collection) -> list:
    """Objects of a collection and its children. (Not `all_objects`: that cached list can
    still hold objects removed a moment ago.)"""
    out = list(collection.objects)
    for child in collection.children:
        out += [o for o in _objects(child) if o not in out]
    return out


def clear(collection) -> None:
    """Remove what `animate` added to a build (objects, modifiers, keyframes)."""
    objects = _objects(collection)
    doomed = [o for o in objects if o.get("mm_sweep")]
    data = [o.data for o in doomed if o.data is not None and o.data.get("mm_sweep")]
    for obj in objects:
        if obj in doomed:
            continue
        mod = obj.modifiers.get(SWEEP_MODIFIER)
        if mod is not None:
            obj.modifiers.remove(mod)
            _remove_fcurves(obj, f'modifiers["{SWEEP_MODIFIER}"]')
        if obj.get("mm_sweep_hidden"):
            _remove_fcurves(obj, "hide_")
            obj.hide_viewport = obj.hide_render = False
            del obj["mm_sweep_hidden"]
        if obj.type == "CAMERA" and obj.parent is not None and obj.parent.get("mm_sweep"):
            rest = obj.matrix_basis.copy()     # its world transform with the pivot at rest
            obj.parent = None
            obj.matrix_basis = rest
    if doomed or data:
        bpy.data.batch_remove(doomed + data)


# --- colour inputs --------------------------------------------------------------------------

COLOUR_TABLE_SIZE = 4096


def colour_table(viz, n: int = COLOUR_TABLE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The build's colour rule as a table (core/overlays.py: at most 1/(2n - 2) off in
    sqrt(v), far below what an 8-bit image shows)."""
    return overlays.colour_table(viz, n)


def _colour_inputs(rng: colour.Range, table) -> dict:
    return {"Absmin": float(rng.absmin), "Absmax": float(rng.absmax), "Colours": table,
            "Table Size": COLOUR_TABLE_SIZE}


_products_range = overlays.products_range


# --- per matmul -------------------------------------------------------------------------------

def _axis_inputs(prefix: str, axis) -> dict:
    return {f"{prefix} Cells": axis.n, f"{prefix} Points": axis.in_flight,
            f"{prefix} Block": axis.size, f"{prefix} Sweep": axis.sweep,
            f"{prefix} Div": axis.div, f"{prefix} Mod": axis.mod}


def _result_inputs(sw: MatmulSweep, rows: int) -> dict:
    return {"Steps": sw.steps, "Rows": rows, "Cols": sw.cols, "Row Block": sw.i.size,
            "Col Block": sw.j.size, "Row Coef": sw.row_coef, "Col Coef": sw.col_coef,
            "Depth": sw.depth, "K Block": sw.k.size, "K Blocks": sw.k.blocks}


def _highlight_inputs(sw: MatmulSweep, axes, shape) -> dict:
    out = {"Steps": sw.steps, "Boost": HIGHLIGHT_BOOST, "Grow": HIGHLIGHT_GROW}
    for prefix, name, n in zip(("Row", "Col"), axes, shape):
        if name is None:
            out.update({f"{prefix} Cells": n, f"{prefix} Points": n, f"{prefix} Block": 1,
                        f"{prefix} Sweep": False, f"{prefix} Div": 1, f"{prefix} Mod": 1})
        else:
            out.update(_axis_inputs(prefix, sw.axis(name)))
    return out


def _k_plane_positions(cube: CubePlan, result: MatrixPlan, sw: MatmulSweep) -> np.ndarray:
    """(k blocks * rows * cols, 3): each k block's plane half a gap from the block, on the
    result face's side."""
    near = cube.interior_point(0, 0, 0)
    far = cube.interior_point(0, 0, sw.depth - 1)
    face = np.asarray(result.positions[0], np.float64)
    toward_k0 = np.linalg.norm(face - near) <= np.linalg.norm(face - far)
    offset = max(cube.gap / 2, 0.5)
    i, j = np.divmod(np.arange(sw.rows * sw.cols), sw.cols)
    planes = []
    dk = np.asarray(cube.dk, np.float64)
    for b in range(sw.k.blocks):     # a handful of blocks; each plane is vectorised
        k0 = b * sw.k.size
        k1 = min(k0 + sw.k.size, sw.depth) - 1
        if toward_k0:
            pos = cube.interior_point(i, j, np.full_like(i, k0)) - dk * offset
        else:
            pos = cube.interior_point(i, j, np.full_like(i, k1)) + dk * offset
        planes.append(pos)
    return np.concatenate(planes).astype(np.float32)


class _Animator:
    def __init__(self, plan: ScenePlan, spec: Spec, collection, scene):
        self.plan = plan
        self.spec = spec
        self.viz = spec.viz
        self.coll = collection
        self.scene = scene
        self.objects = {o["mm_key"]: o for o in _objects(collection)
                        if "mm_key" in o and o.get("mm_role") in ("leaf", "result")}
        self.matrices = {m.key: m for m in plan.matrices}
        self.cubes = {c.key: c for c in plan.cubes}
        self.gmax = max((colour.finite_absmax(m.values) for m in plan.matrices), default=0.0)
        self.values_objects: dict[str, object] = {}
        self.table = self.colour_table()

    def colour_table(self):
        colours, sizes = colour_table(self.viz)
        mesh = bpy.data.meshes.new(f"{self.plan.name}:colour_table")
        cells.fill_mesh(mesh, np.zeros((len(sizes), 3), np.float32),
                        np.zeros(len(sizes), np.float32), colours, sizes)
        obj = _new_object(f"{self.plan.name}:colour_table", mesh, self.coll, "colour_table")
        obj.hide_viewport = obj.hide_render = obj.hide_select = True
        return obj

    def name(self, key: str, what: str) -> str:
        return f"{self.plan.name}:{key}:{what}"

    def obj(self, key: str):
        obj = self.objects.get(key)
        if obj is None:
            raise KeyError(f"build {self.plan.name!r} has no object for matrix {key!r}; "
                           "animate the collection the plan was built into")
        return obj

    def values_object(self, key: str):
        """A hidden object sharing matrix `key`'s mesh, for Object Info + Sample Index."""
        if key not in self.values_objects:
            src = self.obj(key)
            obj = bpy.data.objects.new(self.name(key, "values"), src.data)
            self.coll.objects.link(obj)
            _tag(obj, self.coll, "values")
            obj["mm_role"] = "values"
            obj["mm_values_of"] = src.name
            obj.hide_viewport = obj.hide_render = obj.hide_select = True
            self.values_objects[key] = obj
        return self.values_objects[key]

    def keys(self, obj, sched: Schedule, key: str, modifier: str) -> None:
        frames, values = sched.keys(key)
        set_keys(obj, step_path(modifier), frames, values)

    def matmul(self, sched: Schedule, sw: MatmulSweep) -> None:
        """Products object, result reveal, operand highlights and k-block planes of one
        matmul, all keyed by its local step."""
        cube = self.cubes[sw.key]
        result_plan = self.matrices[sw.key]
        left_plan, right_plan = self.matrices[sw.left], self.matrices[sw.right]
        result = self.obj(sw.key)
        lvals, rvals = self.values_object(sw.left), self.values_object(sw.right)
        lv = left_plan.values.reshape(sw.rows, sw.depth)
        rv = right_plan.values.reshape(sw.depth, sw.cols)

        # products
        rng = _products_range(lv, rv, self.viz, self.gmax)
        mesh = bpy.data.meshes.new(self.name(sw.key, "products"))
        prod = _new_object(self.name(sw.key, "products"), mesh, self.coll, "products")
        prod["mm_matmul"] = result.name
        prod["mm_alg"] = sw.alg
        prod["mm_steps"] = sw.steps
        inputs = {"Steps": sw.steps, "Left": lvals, "Right": rvals,
                  **_axis_inputs("I", sw.i), **_axis_inputs("K", sw.k),
                  **_axis_inputs("J", sw.j), "Gap": float(cube.gap),
                  "Base": tuple(map(float, cube.base)), "Step I": tuple(map(float, cube.di)),
                  "Step J": tuple(map(float, cube.dj)), "Step K": tuple(map(float, cube.dk)),
                  **_colour_inputs(rng, self.table), sweep_nodes.STEP: -1}
        nodes.add_modifier(prod, sweep_nodes.products_group(), SWEEP_MODIFIER,
                           sweep_nodes.PRODUCTS_INPUTS, inputs)
        _cells_modifier(prod, result, result_plan)
        self.keys(prod, sched, sw.key, SWEEP_MODIFIER)

        # result: written cells / partial sums
        rinputs = {**_result_inputs(sw, sw.rows), "Keep When Done": True,
                   "Accumulate": sw.accumulates, "Left": lvals, "Right": rvals,
                   "Epilogue": POINTWISE_EPILOGUES.index(pointwise_part(sw.epilogue)),
                   **_colour_inputs(colour.value_range(result_plan.values, self.viz.sensitivity,
                                                       self.gmax), self.table),
                   sweep_nodes.STEP: -1}
        _prepend_modifier(result, SWEEP_MODIFIER, sweep_nodes.result_group(),
                          sweep_nodes.RESULT_INPUTS, rinputs)
        self.keys(result, sched, sw.key, SWEEP_MODIFIER)

        # highlights: the operand cells in flight, drawn over the operands
        if not sched.hide_inputs:
            for key, axes, shape in ((sw.left, sw.left_hl, (sw.rows, sw.depth)),
                                     (sw.right, sw.right_hl, (sw.depth, sw.cols))):
                if axes != (None, None):
                    self.highlight(sched, sw, key, axes, shape)

        if sw.k_planes:
            self.k_planes(sched, sw, cube, result_plan, result, lv, rv, rinputs)

    def highlight(self, sched, sw, key, axes, shape) -> None:
        operand = self.obj(key)
        mesh = bpy.data.meshes.new(self.name(key, "highlight"))
        obj = _new_object(self.name(key, "highlight"), mesh, self.coll, "highlight")
        obj["mm_matmul"] = self.obj(sw.key).name
        obj["mm_operand"] = operand.name
        nodes.add_modifier(obj, sweep_nodes.highlight_group(), SWEEP_MODIFIER,
                           sweep_nodes.HIGHLIGHT_INPUTS,
                           {**_highlight_inputs(sw, axes, shape),
                            "Source": self.values_object(key), sweep_nodes.STEP: -1})
        _cells_modifier(obj, operand, self.matrices[key])
        self.keys(obj, sched, sw.key, SWEEP_MODIFIER)

    def k_planes(self, sched, sw, cube, result_plan, result, lv, rv, rinputs) -> None:
        sums = sw.block_sums(lv, rv).astype(np.float32)
        rng = colour.value_range(sums.ravel(), self.viz.sensitivity, self.gmax)
        flat = sums.ravel()
        mesh = bpy.data.meshes.new(self.name(sw.key, "k_planes"))
        cells.fill_mesh(mesh, _k_plane_positions(cube, result_plan, sw), flat,
                        colour.colors(flat, rng, self.viz), colour.sizes(flat, rng, self.viz))
        obj = _new_object(self.name(sw.key, "k_planes"), mesh, self.coll, "k_planes")
        obj["mm_matmul"] = result.name
        nodes.add_modifier(obj, sweep_nodes.result_group(), SWEEP_MODIFIER,
                           sweep_nodes.RESULT_INPUTS,
                           {**rinputs, "Keep When Done": False, "Accumulate": False})
        _cells_modifier(obj, result, result_plan)
        self.keys(obj, sched, sw.key, SWEEP_MODIFIER)

    def hide_inputs(self, sched: Schedule) -> None:
        a, b = sched.frame_range
        for key in sched.hidden:
            obj = self.obj(key)
            obj["mm_sweep_hidden"] = True
            for prop in ("hide_viewport", "hide_render"):
                set_keys(obj, prop, [a, b + 1], [1.0, 0.0])

    def camera(self):
        cams = [o for o in _objects(self.coll) if o.type == "CAMERA"]
        return cams[0] if cams else self.scene.camera

    def spin(self, sched: Schedule) -> None:
        """Turntable: the camera turns about the vertical through the plan's centre, one
        turn every `spin` seconds (negative: the other way)."""
        cam = self.camera()
        if not sched.spin or cam is None:
            return
        centre = [float(c) for c in (np.asarray(self.plan.bounds_min, np.float64)
                                     + np.asarray(self.plan.bounds_max, np.float64)) / 2]
        pivot = bpy.data.objects.new(f"{self.plan.name}:camera_pivot", None)
        self.coll.objects.link(pivot)
        _tag(pivot, self.coll, "pivot")
        pivot["mm_role"] = "camera_pivot"
        pivot.location = centre
        world = cam.matrix_world.copy()
        cam.parent = pivot
        # pivot at rest (T(centre)) times this inverse is the identity: the camera's own
        # transform stays its world transform until the pivot turns.
        cam.matrix_parent_inverse = Matrix.Translation(centre).inverted()
        cam.matrix_basis = world
        a, b = sched.frame_range
        turns = (b - a) / sched.fps / sched.spin
        set_keys(pivot, "rotation_euler", [a, b], [0.0, 2 * math.pi * turns], index=2,
                 interpolation="LINEAR")


def schedule_for(plan: ScenePlan, spec: Spec, scene=None) -> Schedule:
    """The schedule `animate` keyframes, timed at the scene's frame rate and start frame."""
    scene = scene or bpy.context.scene
    fps = scene.render.fps / (scene.render.fps_base or 1.0)
    return make_schedule(plan, spec.anim, fps=fps, frame_start=scene.frame_start)


def animate(plan: ScenePlan, spec: Spec, collection, *, scene=None) -> tuple[int, int]:
    """Keyframe the sweep of a built plan; sets and returns the scene's frame range.
    Without animated matmuls nothing is added and the range is (frame_start, frame_start)."""
    scene = scene or bpy.context.scene
    clear(collection)
    sched = schedule_for(plan, spec, scene)
    if sched.empty:
        return scene.frame_start, scene.frame_start
    animator = _Animator(plan, spec, collection, scene)
    try:
        for sw in sched.sweeps.values():
            animator.matmul(sched, sw)
        if sched.hide_inputs:
            animator.hide_inputs(sched)
        animator.spin(sched)
    except BaseException:
        clear(collection)
        raise
    start, end = sched.frame_range
    scene.frame_start, scene.frame_end = start, end
    collection["mm_sweep_steps"] = sched.n_steps
    collection["mm_sweep_frames_per_step"] = float(sched.step_frames)
    return start, end


# --- benchmark ---------------------------------------------------------------------------------

def frame_times(scene=None, frames=None) -> list[tuple[float, float]]:
    """(wall, CPU) seconds to set each frame and evaluate the depsgraph (the sweep's
    per-frame cost). CPU time sums all of Blender's threads: on a busy machine it says more
    than wall time."""
    scene = scene or bpy.context.scene
    if frames is None:
        frames = range(scene.frame_start, scene.frame_end + 1)
    out = []
    for f in frames:
        w0, c0 = time.perf_counter(), time.process_time()
        scene.frame_set(int(f))
        bpy.context.evaluated_depsgraph_get()
        out.append((time.perf_counter() - w0, time.process_time() - c0))
    return out


def benchmark(plan: ScenePlan, spec: Spec, blend_path=None, *, frames: int = 8) -> dict:
    """Build + animate `plan` into the current (empty) file, time a few frames spread over the
    sweep, optionally save the .blend. Returns build/animate seconds, per-frame wall ms
    (median, min, max) and CPU ms (median, all threads), frame range and file size."""
    from .build import build
    t0 = time.perf_counter()
    coll = build(plan)
    t1 = time.perf_counter()
    start, end = animate(plan, spec, coll)
    t2 = time.perf_counter()
    scene = bpy.context.scene
    frame_times(scene, [start])           # first evaluation builds everything
    picks = np.unique(np.linspace(start + 1, end, frames).round().astype(int))
    times = np.array(frame_times(scene, picks)) * 1000
    wall, cpu = times[:, 0], times[:, 1]
    out = {"build_s": t1 - t0, "animate_s": t2 - t1, "frames": [start, end],
           "frame_ms_median": float(np.median(wall)), "frame_ms_min": float(wall.min()),
           "frame_ms_max": float(wall.max()), "frame_cpu_ms_median": float(np.median(cpu)),
           "frames_timed": len(times)}
    if blend_path is not None:
        import os
        bpy.ops.wm.save_as_mainfile(filepath=str(blend_path), copy=True, compress=False)
        out["blend_bytes"] = os.path.getsize(blend_path)
    return out
