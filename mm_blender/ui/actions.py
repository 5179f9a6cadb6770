"""What the panel's buttons do, as plain functions the operators call (and scripts and tests
can call too): panel settings -> dict -> spec.from_dict -> the same api functions as the CLI.
Errors are MMError; every check runs before the scene is touched."""
from __future__ import annotations

from pathlib import Path

import bpy

from .. import api
from ..core import spec as specmod
from ..errors import MMError
from . import presets as ui_presets
from .props import dict_from_settings, settings_from_dict, settings_of

PANEL_ORIGIN = "panel"


def online_access() -> bool:
    """Blender's 'Allow Online Access' preference (4.2+); older versions: allowed."""
    return bool(getattr(bpy.app, "online_access", True))


def spec_from_settings(settings) -> specmod.Spec:
    """Validate the panel state as a preset would be (errors name key, column or shape)."""
    data = dict_from_settings(settings)
    base_dir = Path(bpy.path.abspath(settings.base_dir)) if settings.base_dir else None
    return specmod.from_dict(data, name=settings.name, origin=PANEL_ORIGIN, base_dir=base_dir)


def load_preset(settings, name: str) -> dict:
    """Fill the panel from a built-in or saved preset; returns its table."""
    data, base_dir = ui_presets.read(name)
    settings_from_dict(settings, data, base_dir=str(base_dir))
    settings.user_preset_name = "" if ui_presets.is_builtin(name) else name
    return data


def build(scene, settings=None, progress=None):
    """Build what the panel shows into `scene`; returns (spec, collection)."""
    settings = settings or settings_of(scene)
    spec = spec_from_settings(settings)
    if bpy.context.scene != scene:
        raise MMError("the panel builds into the active scene only")
    collection = api.build(spec, progress=progress, allow_network=online_access())
    return spec, collection


def builds(scene) -> list:
    """Collections of the mm builds linked to this scene."""
    return [c for c in scene.collection.children if c.get("mm_root") and c.get("mm_build")]


def clear(scene) -> int:
    """Remove every mm build of this scene (objects, meshes, materials they alone use)."""
    from ..scene import build as scene_build
    names = [c["mm_build"] for c in builds(scene)]
    for name in names:
        scene_build.remove(name)
    return len(names)


def add_lens(scene, settings=None):
    """A lens over the newest build's result, sized by the panel's lens size and
    magnification; returns the lens Empty."""
    from ..scene import overlays
    settings = settings or settings_of(scene)
    found = builds(scene)
    if not found:
        raise MMError("Add Lens needs a built mm scene: build one first")
    d = settings.deco
    empty, _numbers = overlays.add_lens(
        found[-1], radius=d.lens_size * specmod.LENS_CELLS_PER_SIZE,
        text_size=d.magnification * specmod.LENS_TEXT_PER_MAGNIFICATION,
        decimals=d.lens_decimals,
        spread=max(1.0, d.magnification * specmod.LENS_SPREAD_PER_MAGNIFICATION), scene=scene)
    return empty


def frame_camera(scene, view: str | None = None) -> None:
    """Reframe the build's camera for the render's aspect ratio (and the panel's view)."""
    from ..scene import camera as cameramod
    if view is not None:
        cameramod.check_view(view)
    if not cameramod.refit(scene.camera, scene, view):
        raise MMError("the scene has no mm camera: build first")


def _resolve_output(path: str, default_name: str) -> Path:
    """Blender-relative (//) paths resolve beside the .blend; an unsaved file has no
    folder, so they go to Blender's temporary folder."""
    if path.startswith("//") and not bpy.data.filepath:
        return Path(bpy.app.tempdir or "/tmp") / (path[2:] or default_name)
    return Path(bpy.path.abspath(path or default_name))


def render_options(settings) -> dict:
    r = settings.render
    return dict(resolution=(r.resolution_x, r.resolution_y), samples=r.samples,
                engine=r.engine, device=r.device)


def render_still(scene, settings=None, progress=None) -> Path:
    settings = settings or settings_of(scene)
    path = _resolve_output(settings.render.still_path, "mm_render.png")
    return api.render_still(path, progress=progress, **render_options(settings))


def render_animation(scene, settings=None, progress=None) -> Path:
    settings = settings or settings_of(scene)
    video = settings.render.video
    path = _resolve_output(settings.render.animation_path,
                           "mm_animation.mp4" if video else "mm_frames")
    if video and path.suffix.lower() != ".mp4":
        raise MMError(f"a video is written as H.264 MP4: give a path ending in .mp4, "
                      f"not '{path.name}'")
    if not video and path.suffix:
        raise MMError(f"frames are written into a folder: give a folder path, not '{path.name}'")
    if not video and path.exists():
        raise MMError(f"'{path}' exists: choose a new folder for the frames")
    return api.render_animation(path, frames=(scene.frame_start, scene.frame_end), video=video,
                                progress=progress, **render_options(settings))


def import_link(settings, text: str) -> tuple[dict, list[str]]:
    """Load an mm link (or its JSON, or a file) into the panel; returns (table, dropped)."""
    from ..interop.mm_links import import_mm
    if not text.strip():
        raise MMError("paste an mm link (https://...?params=...) or its JSON first")
    data, dropped = import_mm(text.strip(), allow_network=online_access())
    settings_from_dict(settings, data)
    settings.user_preset_name = ""
    return data, dropped


def save_preset(settings, name: str) -> Path:
    """Save the panel as a user preset called `name` (built-in names are refused)."""
    name = ui_presets.check_name(name)
    settings.name = name
    base_dir = bpy.path.abspath(settings.base_dir) if settings.base_dir else ""
    return ui_presets.save(name, dict_from_settings(settings), base_dir=base_dir)


def trace_file(settings, file: str, function: str, root: str = "", batch: int = 0,
               head: int = 0) -> tuple:
    """Run FUNCTION() from a Python file with torch (the only door that runs code: the user's
    own file, by their click), save the drawn tree as a user preset named FILE_FUNCTION and
    load it into the panel. Returns (preset name, every tree found)."""
    from ..tracing import trace_file as _trace_file
    if not file.strip():
        raise MMError("choose the Python file to trace")
    path = Path(bpy.path.abspath(file.strip()))
    stem = "".join(c if c.isalnum() or c in "_-" else "_" for c in f"{path.stem}_{function}")
    name = ui_presets.check_name(stem[:64].lstrip("_-") or "trace")
    _spec, traced = _trace_file(f"{path}:{function.strip()}", ui_presets.user_dir() /
                                f"{name}.toml", root=root.strip() or None, batch=batch,
                                head=head)
    load_preset(settings, name)
    return name, traced.trees


def delete_preset(name: str) -> Path:
    return ui_presets.delete(name)


def matrix_info(obj) -> dict | None:
    """What the panel shows for a selected matrix object: name, shape, role and value range
    (None for other objects). min/max come from the exact `value` point attribute."""
    if obj is None or "mm_name" not in obj or obj.type != "MESH":
        return None
    info = {
        "name": str(obj["mm_name"]),
        "rows": int(obj.get("mm_rows", 0)),
        "cols": int(obj.get("mm_cols", 0)),
        "role": str(obj.get("mm_role", "")),
        "epilogue": str(obj.get("mm_epilogue", "")),
        "build": str(obj.get("mm_build", "")),
        "min": None, "max": None,
    }
    rng = value_range(obj.data)
    if rng is not None:
        info["min"], info["max"] = rng
    return info


_RANGE_CACHE: dict = {}


def value_range(mesh) -> tuple[float, float] | None:
    """(min, max) of the `value` attribute, cached per mesh (panels redraw often; a million
    cells take a few ms to read)."""
    import numpy as np
    attr = mesh.attributes.get("value")
    if attr is None or attr.domain != "POINT" or attr.data_type != "FLOAT":
        return None
    n = len(attr.data)
    key = (mesh.as_pointer(), mesh.name, n)
    if key in _RANGE_CACHE:
        return _RANGE_CACHE[key]
    if n == 0:
        return None
    values = np.empty(n, dtype=np.float32)
    attr.data.foreach_get("value", values)
    finite = values[np.isfinite(values)]
    result = (float(finite.min()), float(finite.max())) if finite.size else None
    if len(_RANGE_CACHE) > 64:
        _RANGE_CACHE.clear()
    _RANGE_CACHE[key] = result
    return result


class Progress:
    """Progress for long operations: the window manager's progress cursor plus a status bar
    line (headless: nothing to show, so both are skipped). Use as a context manager."""

    def __init__(self, context, title: str):
        self.context = context
        self.title = title
        self.wm = getattr(context, "window_manager", None)
        self.workspace = None if bpy.app.background else getattr(context, "workspace", None)

    def __enter__(self):
        if self.wm is not None:
            self.wm.progress_begin(0, 1000)
        self._status(self.title)
        return self

    def __call__(self, fraction: float, message: str) -> None:
        if self.wm is not None:
            self.wm.progress_update(int(1000 * min(max(fraction, 0.0), 1.0)))
        self._status(f"{self.title}: {message} ({100 * fraction:.0f}%)")

    def _status(self, text):
        if self.workspace is not None:
            try:
                self.workspace.status_text_set(text)
            except (AttributeError, RuntimeError, TypeError):
                self.workspace = None

    def __exit__(self, *exc):
        if self.wm is not None:
            self.wm.progress_end()
        if self.workspace is not None:
            try:
                self.workspace.status_text_set(None)
            except (AttributeError, RuntimeError, TypeError):
                pass
        return False
