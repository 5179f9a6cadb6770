"""The few functions every door calls (panel, CLI, render jobs, scripts):

    spec = load_spec("intro_cube")          # a preset name or a TOML path
    plan = plan_spec(spec)                  # values + layout + colours (no bpy)
    coll = build(spec)                      # Blender objects (bpy)
    render_still("out.png", resolution=(640, 360), samples=16)

Only `build`, `save_blend` and the render functions import bpy, lazily.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import outputs
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
    preflight(spec, allow_network)
    overrides = leaf_overrides(spec, progress)
    if progress:
        progress(0.05, "computing values")
    values = evaluate(spec, overrides, allow_network=allow_network)
    if progress:
        progress(0.2, "laying out")
    return make_plan(spec, values)


def check_output(path: str | Path, kind: str, what: str = "output") -> Path:
    """Fail before any work if an output cannot be written (see outputs.check_output)."""
    return outputs.check_output(path, kind, what)


def preflight(spec: Spec, allow_network: bool = False):
    """Every check that needs no values, before any work: what the scene will build fits in
    memory (every cell, sweep point and k-block plane; data files' shapes from their
    headers), the network is allowed where a leaf needs it, and a [model] table's layer,
    head and tokens fit the model. `check` and `build` run the same checks. Returns what
    the scene will build (core.budget.Budget)."""
    from .core.budget import check_memory
    from .core.initialisers import check_leaf_file
    from .core.initialisers import network_off
    for leaf in spec.leaves.values():
        if leaf.init == "url" and not allow_network:
            raise MMError(network_off(f"{spec.origin}: leaf {leaf.name!r} reads url "
                                      f"'{leaf.url}'"))
        if leaf.init == "file":
            check_leaf_file(leaf.name, leaf.h, leaf.w, leaf.file, leaf.tensor, spec.base_dir)
    built = check_memory(spec)
    if spec.model is not None:
        from .models.leaves import check_model
        check_model(spec)
    return built


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
    """Save the open file as a copy at `path`: written beside it, reopened by Blender to
    verify, then moved over it (a failed save leaves the old file)."""
    import bpy
    path = check_output(path, "blend", "--blend")
    with outputs.atomic(path, what=".blend") as tmp:
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp), copy=True)
    return path


def reset_file() -> None:
    """Start from an empty Blender file (headless jobs)."""
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


def render_still(path: str | Path, **options) -> Path:
    from .render.render import render_still as _render_still
    return _render_still(check_output(path, "image"), **options)


def render_animation(path: str | Path, **options) -> Path:
    """An MP4 (video=True) or a folder of PNG frames; frames default to the sweep's range."""
    from .render.render import render_animation as _render_animation
    return _render_animation(Path(path), **options)
