"""`build(plan)`: a ScenePlan becomes one collection of Blender objects, all-or-nothing.

Every datablock a build creates carries `mm_build` (the plan's name) and `mm_build_token`
(this attempt). A new build is made beside the old one of the same name; only when it is
complete is the old one removed and the new one renamed into place. A failure (or an
exception raised by the progress callback, e.g. a cancel) removes everything the attempt
made, and the scene is as it was.

Naming: the collection is `<plan.name>`; objects and their data are `<plan.name>:<key>` for
matrices, `<plan.name>:lines`, `:flow_guides`, `:label:<key>`, `:camera`, `:sun`, and
`:title` (the expression, a child of the camera) when the plan shows it.
"""
from __future__ import annotations

import uuid
from typing import Callable

import bpy
import numpy as np

from ..core.plan import ScenePlan
from ..errors import MMError
from . import camera as cameramod
from . import cells, decor, material, nodes, overlays

Progress = Callable[[float, str], None]

_DATA_COLLECTIONS = ("objects", "meshes", "curves", "cameras", "lights", "images",
                     "materials", "node_groups", "collections", "actions")
_SHARED_COLLECTIONS = ("materials", "node_groups", "worlds", "images")


def object_name(plan_name: str, key: str) -> str:
    return f"{plan_name}:{key}"


def find(name: str):
    """The collection of the build called `name`, or None."""
    for coll in bpy.data.collections:
        if coll.get("mm_build") == name and coll.get("mm_root"):
            return coll
    return None


def _tagged(key: str, value: str) -> list:
    ids = []
    for attr in _DATA_COLLECTIONS:
        ids.extend(i for i in getattr(bpy.data, attr) if i.get(key) == value)
    return ids


def _purge_shared() -> None:
    """Shared materials/node groups/worlds no build uses any more."""
    while True:
        unused = [i for attr in _SHARED_COLLECTIONS for i in getattr(bpy.data, attr)
                  if i.get("mm_shared") and i.users == 0]
        if not unused:
            return
        bpy.data.batch_remove(unused)


def _remove_ids(ids: list) -> None:
    # Actions keyed on these datablocks (animate.py) go with them once nothing else uses them.
    removing = {i.as_pointer() for i in ids}
    actions = {ad.action.as_pointer(): ad.action for i in ids
               if (ad := getattr(i, "animation_data", None)) is not None and ad.action}
    if ids:
        bpy.data.batch_remove(ids)
    orphans = [a for p, a in actions.items() if p not in removing
               and (a.users == 0 or (a.users == 1 and a.use_fake_user))]
    if orphans:
        bpy.data.batch_remove(orphans)
    _purge_shared()


def remove(name: str) -> bool:
    """Remove the build called `name` and every datablock it made. True if there was one."""
    ids = _tagged("mm_build", name)
    _remove_ids(ids)
    return bool(ids)


def _check(plan: ScenePlan) -> None:
    keys = [m.key for m in plan.matrices]
    if len(set(keys)) != len(keys):
        raise ValueError(f"plan {plan.name!r}: matrix keys are not unique")
    known = set(keys)
    for m in plan.matrices:
        for side in (m.left, m.right):
            if side and side not in known:
                raise ValueError(f"plan {plan.name!r}: {m.key!r} refers to unknown "
                                 f"operand {side!r}")
    if not plan.name:
        raise MMError("a scene needs a name")


def build(plan: ScenePlan, *, look: str | None = None, view: str | None = None,
          shape: str | None = None, progress: Progress | None = None,
          scene=None):
    """Turn `plan` into a collection named after it, linked to `scene` (default: the
    context scene), which also gets the build's camera, world and colour management.

    look: "dark" | "paper" (default plan.background); view: "mm" | "front" | "top" | "iso"
    (default plan.view); shape: "cube" | "sphere" (default plan.cell_shape).
    progress(fraction, message) is called as cells are built; raising from it cancels.
    """
    scene = scene or bpy.context.scene
    look = material.check_look(look or plan.background or "dark")
    view = cameramod.check_view(view or plan.view or "mm")
    shape = shape or plan.cell_shape or "sphere"
    if shape not in nodes.SHAPES:
        raise MMError(f"unknown cell shape {shape!r}: expected one of {', '.join(nodes.SHAPES)}")
    _check(plan)

    token = uuid.uuid4().hex
    intended: dict = {}           # datablock -> the name it should end up with

    def tag(id_, name):
        id_["mm_build"] = plan.name
        id_["mm_build_token"] = token
        intended[id_] = name
        data = getattr(id_, "data", None)
        if data is not None and data.get("mm_build_token") is None and id_.type != "EMPTY":
            tag(data, name)
        return id_

    def report(fraction, message):
        if progress is not None:
            progress(min(max(fraction, 0.0), 1.0), message)

    try:
        coll = bpy.data.collections.new(plan.name)
        tag(coll, plan.name)
        coll["mm_root"] = True
        coll["mm_look"] = look
        coll["mm_view"] = view
        coll["mm_title"] = plan.title
        coll["mm_cells"] = plan.cell_count()
        scene.collection.children.link(coll)

        total = max(plan.cell_count(), 1)
        done = 0
        report(0.0, f"building {plan.name}")
        cell_mat = material.cells_material(look)
        objects = {}
        for m in plan.matrices:
            name = object_name(plan.name, m.key)
            obj = cells.cells_object(m, name, material=cell_mat, shape=shape, collection=coll)
            tag(obj, name)
            obj["mm_name"] = m.name
            obj["mm_key"] = m.key
            obj["mm_rows"] = int(m.rows)
            obj["mm_cols"] = int(m.cols)
            obj["mm_role"] = m.role
            obj["mm_path"] = m.path
            if m.role == "result":
                obj["mm_epilogue"] = m.epilogue
            objects[m.key] = obj
            done += m.rows * m.cols
            report(0.9 * done / total, f"{m.name}: {m.rows}x{m.cols} cells")

        decor_mat = material.decor_material()
        segs, cols, radii = decor.gather_lines(
            plan.lines, decor.scene_scale(plan.bounds_min, plan.bounds_max), look)
        if len(segs):
            name = object_name(plan.name, "lines")
            tag(decor.lines_object(name, segs, cols, radii, material=decor_mat,
                                   collection=coll), name)
        if plan.triangles:
            name = object_name(plan.name, "flow_guides")
            tag(decor.triangles_object(name, plan.triangles, material=decor_mat,
                                       collection=coll), name)

        name = object_name(plan.name, "camera")
        cam = tag(cameramod.camera_object(name, cameramod.frame_points(plan), view=view,
                                          scene=scene, collection=coll,
                                          direction=plan.camera_direction), name)
        name = object_name(plan.name, "sun")
        for n, obj in enumerate(cameramod.lights(name, look, plan.bounds_min, plan.bounds_max,
                                                 collection=coll)):
            tag(obj, name if n == 0 else f"{name}{n + 1}")
        label_mat = material.label_material(look)
        texts = {}
        for label in plan.labels:
            name = object_name(plan.name, f"label:{label.key}")
            texts[label.key] = tag(decor.text_object(name, label.text, label.kind,
                                                     material=label_mat, collection=coll), name)
        if texts:   # placed for the camera, which then frames them too
            top = cameramod.TITLE_BAND if plan.show_title and plan.title else 0.0
            points = cameramod.frame_points(plan, labels=False)
            framed = points
            for _ in range(2):   # the second pass places them for the frame that holds them
                portrait = decor.reference_screen(cam, scene, framed, view,
                                                  plan.camera_direction,
                                                  size=decor.labels.OTHER_FRAME, top=top)
                screen = decor.reference_screen(cam, scene, framed, view,
                                                plan.camera_direction, top=top)
                corners = decor.place_texts(plan, texts, screen, cam, [portrait])
                framed = np.concatenate([points, corners])
            cam["mm_frame_points"] = framed.ravel().tolist()
            cameramod.refit(cam, scene)
        if plan.show_title and plan.title:
            name = object_name(plan.name, "title")
            tag(cameramod.title_object(name, plan.title, cam, scene, material=label_mat,
                                       collection=coll), name)
        overlays.add(plan, coll, cam, look, tag)
        report(0.95, "scene")
        world = material.world(look)
    except BaseException:
        _remove_ids(_tagged("mm_build_token", token))
        raise

    # Complete: the scene takes the new camera and world (before the purge, which drops
    # shared datablocks nothing uses), the old build of this name goes, the new one takes
    # its names.
    scene.camera = cam
    scene.world = world
    material.apply_render_look(scene)
    old = [i for i in _tagged("mm_build", plan.name) if i.get("mm_build_token") != token]
    _remove_ids(old)
    for id_, name in intended.items():
        if id_.name != name:
            id_.name = name
    for m in plan.matrices:
        obj = objects[m.key]
        if m.role == "result":
            obj["mm_left"] = objects[m.left].name if m.left else ""
            obj["mm_right"] = objects[m.right].name if m.right else ""
    report(1.0, f"built {plan.name}")
    return coll
