"""`show()`: a preset rendered to a picture that Jupyter displays inline (through
`_repr_png_`, so IPython is not needed), and that can be saved."""
from __future__ import annotations

import importlib.util
import re
import struct
import tempfile
from pathlib import Path

from . import api, outputs
from .core.spec import Spec
from .errors import MMError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Picture:
    """A rendered PNG in memory. Jupyter shows it inline; `.save(path)` writes it."""

    def __init__(self, png: bytes, name: str = ""):
        if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
            raise MMError("not a PNG image")
        self.png = png
        self.name = name
        self.width, self.height = struct.unpack(">II", png[16:24])

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<mm_blender.Picture {self.name!r} {self.width}x{self.height} PNG>"

    def save(self, path: str | Path) -> Path:
        """Write the PNG to `path` (via a temporary file beside it, renamed when complete)."""
        if Path(path).suffix.lower() != ".png":
            raise MMError(f"a Picture is a PNG: give a path ending in .png, not "
                          f"'{Path(path).name}'")
        path = outputs.check_output(path, "image", "picture")
        with outputs.atomic(path, what="picture") as tmp:   # verified, then renamed
            tmp.write_bytes(self.png)
        return path


def _size(resolution) -> tuple[int, int]:
    if isinstance(resolution, str):
        m = re.fullmatch(r"\s*(\d+)[xX](\d+)\s*", resolution)
        if not m:
            raise MMError(f"invalid resolution {resolution!r}: write it as WIDTHxHEIGHT, "
                          "e.g. 640x360, or give (width, height)")
        resolution = (m.group(1), m.group(2))
    try:
        width, height = (int(v) for v in resolution)
    except (TypeError, ValueError):
        raise MMError(f"invalid resolution {resolution!r}: give (width, height) or "
                      "'WIDTHxHEIGHT'") from None
    if not (4 <= width <= 16384 and 4 <= height <= 16384):
        raise MMError(f"invalid resolution {width}x{height}: each side must be between 4 "
                      "and 16384")
    return width, height


def show(source: str | Path | Spec, *, resolution=(640, 360), samples: int = 16,
         look: str | None = None, view: str | None = None, engine: str = "cycles",
         device: str = "auto") -> Picture:
    """Build `source` (a preset name, a TOML path or a Spec) in a fresh Blender file and
    render it; returns a Picture. Like the CLI it replaces the open file, so inside
    Blender's interface use the panel (or `build` and `render_still`) instead."""
    spec = api.load_spec(source)
    size = _size(resolution)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 65536:
        raise MMError(f"invalid samples {samples!r}: use a whole number from 1 to 65536")
    if importlib.util.find_spec("bpy") is None:
        raise MMError("show() renders with Blender's bpy module, which is not installed: "
                      "pip install 'mm_blender[blender]'")
    from .bpy_env import prepare
    prepare()
    import bpy
    if not bpy.app.background:
        raise MMError("show() replaces the open Blender file; inside Blender use the MM "
                      "panel, or mm_blender.build and mm_blender.render_still")
    from .render.render import DEVICES, engine_id
    from .scene import camera, material
    if look:
        material.check_look(look)
    if view:
        camera.check_view(view)
    engine_id(engine)
    if device not in DEVICES:
        raise MMError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    plan = api.plan_spec(spec)   # errors on the user's input come before the file is reset
    api.reset_file()
    api.build_plan(spec, plan, look=look, view=view)
    with tempfile.TemporaryDirectory(prefix="mm_blender_show_") as tmp:
        path = api.render_still(Path(tmp) / "show.png", resolution=size, samples=samples,
                                engine=engine, device=device)
        return Picture(path.read_bytes(), spec.name)
