"""Headless rendering, a small facade over the scene's render settings: engine, device,
samples, denoiser, output. Outputs are written atomically (a temporary file next to the
target, renamed when complete), so an error never leaves a partial image or video behind.

Jobs that `import bpy` from a plain Python should first point BLENDER_USER_RESOURCES,
BLENDER_USER_EXTENSIONS and XDG_CACHE_HOME at folders of their own (see tests/scene/conftest.py).
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import bpy

from .. import outputs
from ..errors import MMError
from ..scene import camera as cameramod
from ..scene import nodes
from .frame_clock import FrameClock, FrameTime
from .shared_bvh import static_cells_shared

Progress = Callable[[float, str], None]

ENGINES = ("cycles", "eevee", "workbench")
DEVICES = ("auto", "cpu", "gpu")
GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI")   # tried in this order
STILL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".exr": "OPEN_EXR",
                 ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
assert set(STILL_FORMATS) == set(outputs.STILL_SUFFIXES)   # outputs checks them before bpy


def engine_id(engine: str) -> str:
    """Blender's identifier for an engine name (EEVEE was 'BLENDER_EEVEE_NEXT' in 4.2-4.5)."""
    if engine not in ENGINES:
        raise MMError(f"unknown render engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "cycles":
        return "CYCLES"
    if engine == "workbench":
        return "BLENDER_WORKBENCH"
    return "BLENDER_EEVEE_NEXT" if (4, 2, 0) <= bpy.app.version < (5, 0, 0) else "BLENDER_EEVEE"


def select_device(scene, device: str = "auto") -> str:
    """Point Cycles at a GPU backend if one has a device (OptiX, CUDA, HIP, Metal, oneAPI),
    else the CPU. Returns the backend used ('CPU' or e.g. 'OPTIX')."""
    if device not in DEVICES:
        raise MMError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    if device != "cpu":
        prefs = bpy.context.preferences.addons["cycles"].preferences
        for backend in GPU_BACKENDS:
            try:
                prefs.compute_device_type = backend
            except TypeError:      # backend not built for this platform
                continue
            devices = prefs.get_devices_for_type(backend)
            if any(d.type == backend for d in devices):
                for d in devices:
                    d.use = d.type == backend
                scene.cycles.device = "GPU"
                return backend
        prefs.compute_device_type = "NONE"
        if device == "gpu":
            raise MMError("device 'gpu' was asked for but no OptiX/CUDA/HIP/Metal/oneAPI "
                          "device was found; use device 'auto' or 'cpu'")
    scene.cycles.device = "CPU"
    return "CPU"


def denoiser_available() -> bool:
    try:
        import _cycles
    except ImportError:   # pragma: no cover - Cycles is always built into the wheel
        return False
    return bool(getattr(_cycles, "with_openimagedenoise", False))


def configure(scene=None, *, resolution=(1280, 720), samples: int = 16, engine: str = "cycles",
              device: str = "auto", denoise: bool = True) -> dict:
    """Set engine, device, samples, denoiser and resolution; returns what was chosen."""
    scene = scene or bpy.context.scene
    width, height = (int(v) for v in resolution)
    if width < 1 or height < 1:
        raise MMError(f"resolution must be positive, got {width}x{height}")
    if samples < 1:
        raise MMError(f"samples must be at least 1, got {samples}")
    r = scene.render
    r.engine = engine_id(engine)
    r.resolution_x, r.resolution_y = width, height
    r.resolution_percentage = 100
    r.film_transparent = False
    chosen = {"engine": r.engine, "resolution": (width, height), "samples": samples,
              "device": "", "denoiser": ""}
    if engine == "cycles":
        chosen["device"] = select_device(scene, device)
        scene.cycles.samples = samples
        scene.cycles.preview_samples = samples
        use = bool(denoise) and denoiser_available()
        scene.cycles.use_denoising = use
        if use:
            scene.cycles.denoiser = "OPENIMAGEDENOISE"
            # The accurate prefilter denoises the albedo and normal passes in two more OIDN
            # runs first: at our sample counts that is 3-4x the denoising, which is most of
            # a frame, and it smears sub-pixel dots. "FAST" denoises them together.
            scene.cycles.denoising_prefilter = "FAST"
            chosen["denoiser"] = "OPENIMAGEDENOISE"
    elif engine == "eevee":
        scene.eevee.taa_render_samples = samples
    return chosen


def _still_format(path: Path) -> str:
    fmt = STILL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise MMError(f"output '{path}': unknown image type {path.suffix!r}; use one of "
                      f"{', '.join(sorted(STILL_FORMATS))}")
    return fmt


def _check_scene(scene) -> None:
    if scene.camera is None:
        raise MMError("the scene has no camera: build a plan first")


def render_still(path, *, resolution=(1280, 720), samples: int = 16, engine: str = "cycles",
                 device: str = "auto", denoise: bool = True, progress: Progress | None = None,
                 scene=None, refit_camera: bool = True) -> Path:
    """Render the scene's camera view to `path` (.png/.jpg/.exr/.tif/.webp).

    An mm camera (from `scene.build`) is reframed for the resolution's aspect ratio first,
    unless refit_camera is False."""
    path = Path(path).expanduser().absolute()
    fmt = _still_format(path)
    path = outputs.check_output(path, "image")
    scene = scene or bpy.context.scene
    _check_scene(scene)
    configure(scene, resolution=resolution, samples=samples, engine=engine, device=device,
              denoise=denoise)
    if refit_camera:
        cameramod.refit(scene.camera, scene)
    r = scene.render
    if hasattr(r.image_settings, "media_type"):   # 5.0: after a video render it is VIDEO
        r.image_settings.media_type = "IMAGE"
    r.image_settings.file_format = fmt
    if fmt == "JPEG":
        r.image_settings.color_mode = "RGB"
    r.use_file_extension = False
    if progress:
        progress(0.0, f"rendering {path.name}")
    with outputs.atomic(path, what="image") as tmp:   # verified, then moved over the target
        r.filepath = str(tmp)
        bpy.ops.render.render(write_still=True, scene=scene.name)
    if progress:
        progress(1.0, f"wrote {path}")
    return path


def _cube_cells(scene) -> bool:
    """True if any rendered cells object draws instanced cubes (not a point cloud)."""
    shape = nodes.CELLS_INPUTS["Shape"]
    cube = nodes.SHAPES.index("cube")
    for obj in scene.objects:
        mod = obj.modifiers.get(nodes.CELLS_MODIFIER)
        if mod is not None and not obj.hide_render and mod.get(shape, cube) == cube:
            return True
    return False


def render_animation(path, *, frames=None, video: bool = False, fps: int | None = None,
                     resolution=(1280, 720), samples: int = 16, engine: str = "cycles",
                     device: str = "auto", denoise: bool = True,
                     progress: Progress | None = None, scene=None,
                     refit_camera: bool = True,
                     on_frame: Callable[[FrameTime], None] | None = None) -> Path:
    """Render frames a..b (default: the scene's frame range, which a build's sweep sets).
    video=True: one H.264 MP4 file at `path`; otherwise `path` is a folder receiving
    frame_0001.png... Frames go to a temporary folder beside the target and are moved into
    place only when all are done.

    progress gets "frame n/N ..., about T left" after each frame; on_frame(FrameTime) the
    frame's split into evaluation, Cycles sync, sampling and writing (frame_clock.py)."""
    path = Path(path).expanduser().absolute()
    if frames is None:
        sc = scene or bpy.context.scene
        frames = (sc.frame_start, sc.frame_end)
    start, end = (int(f) for f in frames)
    if end < start:
        raise MMError(f"frame range {start}..{end} is empty")
    if video and (int(resolution[0]) % 2 or int(resolution[1]) % 2):
        raise MMError(f"H.264 video needs an even width and height, got "
                      f"{resolution[0]}x{resolution[1]}")
    path = outputs.check_output(path, "video") if video else outputs.check_output_folder(path)
    scene = scene or bpy.context.scene
    _check_scene(scene)
    configure(scene, resolution=resolution, samples=samples, engine=engine, device=device,
              denoise=denoise)
    if refit_camera:   # at the sweep's first frame: a spinning camera's pivot is at rest there
        scene.frame_set(scene.frame_start)
        cameramod.refit(scene.camera, scene)
    r = scene.render
    scene.frame_start, scene.frame_end = start, end
    if fps:
        r.fps, r.fps_base = int(fps), 1.0
    settings = r.image_settings
    if video:
        if hasattr(settings, "media_type"):   # 5.0: choose the media type first
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        r.ffmpeg.format = "MPEG4"
        r.ffmpeg.codec = "H264"
        r.ffmpeg.constant_rate_factor = "HIGH"
        r.ffmpeg.audio_codec = "NONE"
    else:
        if hasattr(settings, "media_type"):
            settings.media_type = "IMAGE"
        settings.file_format = "PNG"
    tmp_dir = outputs.temp_folder(path)   # removed below, or on an interrupt
    r.filepath = str(tmp_dir / ("video_" if video else "frame_####"))
    r.use_file_extension = True
    count = end - start + 1
    # One Cycles session for the chunk (persistent data): a frame re-syncs only the objects
    # that moved. With point-cloud cells that halves a frame's scene sync; with instanced
    # cubes it is far slower (measured: minutes a frame, 4.8 GB), so not for them. Turning
    # the setting back off afterwards frees the session.
    persistent = r.use_persistent_data
    r.use_persistent_data = engine == "cycles" and not _cube_cells(scene)
    try:
        if progress:
            progress(0.0, f"rendering {count} frames")
        # In that one session the static cells keep a BVH of their own (shared_bvh.py)
        shared = static_cells_shared(scene) if r.use_persistent_data else nullcontext()
        with shared, FrameClock(start, end, progress=progress, on_frame=on_frame):
            bpy.ops.render.render(animation=True, scene=scene.name)
        produced = sorted(p for p in tmp_dir.iterdir() if p.is_file())
        if video:
            if len(produced) != 1:
                raise MMError(f"rendering '{path}' produced {len(produced)} files, not one video")
            with outputs.atomic(path, what="video") as tmp:
                produced[0].replace(tmp)
        else:
            if len(produced) != count:
                raise MMError(f"rendering '{path}' produced {len(produced)} of {count} frames")
            outputs.publish_files(produced, path)
    finally:
        r.use_persistent_data = persistent
        outputs.discard(tmp_dir)
    return path
