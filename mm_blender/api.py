"""The few functions every door calls (panel, CLI, render jobs, scripts):

    spec = load_spec("intro_cube")          # a preset name or a TOML path
    plan = plan_spec(spec)                  # values + layout + colours (no bpy)
    coll = build(spec)                      # Blender objects (bpy)
    render_still("out.png", resolution=(640, 360), samples=16)

Only `build`, `save_blend` and the render functions import bpy, lazily.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .core import presets
from .core.plan import ScenePlan
from .core.spec import Spec
from .errors import MMError

Progress = Callable[[float, str], None]


def load_spec(source: str | Path | Spec) -> Spec:
    if isinstance(source, Spec):
        return source
    return presets.load(source)


def leaf_overrides(spec: Spec, progress: Progress | None = None) -> dict:
    """Arrays that replace initialisers: a real-model capture for presets with [model]."""
    if spec.model is None:
        return {}
    from .models.leaves import capture_leaves   # numpy only; torch used when installed
    return capture_leaves(spec, progress=progress)


def plan_spec(spec: Spec, progress: Progress | None = None,
              allow_network: bool = True) -> ScenePlan:
    from .core.evaluate import evaluate
    from .core.scene_plan import make_plan
    from .core.spec import check_memory
    check_memory(spec)
    overrides = leaf_overrides(spec, progress)
    if progress:
        progress(0.05, "computing values")
    values = evaluate(spec, overrides, allow_network=allow_network)
    if progress:
        progress(0.2, "laying out")
    return make_plan(spec, values)


def check_writable(path: str | Path) -> Path:
    """Fail before any work if an output file cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise MMError(f"output folder '{parent}' does not exist")
    if not os.access(parent, os.W_OK):
        raise MMError(f"output folder '{parent}' is not writable")
    if path.is_dir():
        raise MMError(f"output '{path}' is a folder, not a file")
    return path


def build(source: str | Path | Spec, *, look: str | None = None, view: str | None = None,
          progress: Progress | None = None, allow_network: bool = True):
    """Build a preset into the current Blender file; returns its collection. Everything that
    can fail on the user's input (values, shapes, files) fails before the scene is touched."""
    spec = load_spec(source)
    plan = plan_spec(spec, progress, allow_network=allow_network)
    return build_plan(spec, plan, look=look, view=view, progress=progress)


def build_plan(spec: Spec, plan: ScenePlan, *, look: str | None = None,
               view: str | None = None, progress: Progress | None = None):
    """Build a plan made by `plan_spec(spec)` into the current Blender file."""
    from .scene.animate import animate
    from .scene.build import build as build_scene
    collection = build_scene(plan, look=look, view=view, progress=progress)
    animate(plan, spec, collection)   # keyframes the sweep; adds nothing for static presets
    return collection


def save_blend(path: str | Path) -> Path:
    import bpy
    path = check_writable(path).resolve()
    tmp = path.with_name(path.name + ".part.blend")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp), copy=True)
    os.replace(tmp, path)
    return path


def reset_file() -> None:
    """Start from an empty Blender file (headless jobs)."""
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


def render_still(path: str | Path, **options) -> Path:
    from .render.render import render_still as _render_still
    return _render_still(check_writable(path), **options)


def render_animation(path: str | Path, **options) -> Path:
    """An MP4 (video=True) or a folder of PNG frames; frames default to the sweep's range."""
    from .render.render import render_animation as _render_animation
    return _render_animation(Path(path), **options)
