"""Render one preset: `blender -b -P render_jobs/render.py -- SOURCE --out OUT.png [options]`
or `python render_jobs/render.py SOURCE --out OUT.png [options]` (bpy wheel). The options are
those of `python -m mm_blender render` (resolution, samples, engine, device, view, look,
video, frames)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402

mm = _bootstrap.import_mm_blender()
from importlib import import_module  # noqa: E402

cli = import_module(mm.__name__ + ".cli")
code = cli.main(["render", *_bootstrap.job_args()])
if code:
    sys.exit(code)
