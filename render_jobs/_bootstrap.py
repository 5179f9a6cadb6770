"""Shared start-up for job scripts: find mm_blender and the job's own arguments, whether run
as `blender -b -P render_jobs/X.py -- ARGS` (real Blender) or `python render_jobs/X.py ARGS`
(the bpy wheel)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path


def job_args() -> list[str]:
    """Arguments meant for the job: after `--` inside Blender, else everything after the script."""
    argv = sys.argv
    if "--" in argv:
        return argv[argv.index("--") + 1:]
    if "bpy" in sys.modules and getattr(sys.modules["bpy"].app, "binary_path", ""):
        # inside a real Blender without `--`: no job arguments
        if Path(argv[0]).name.startswith("blender"):
            return []
    return argv[1:]


def import_mm_blender():
    """The installed extension if Blender has it, else the repository this script lives in."""
    try:
        return importlib.import_module("mm_blender")
    except ImportError:
        pass
    for name in list(sys.modules):
        if name.startswith("bl_ext.") and name.endswith(".mm_blender"):
            return importlib.import_module(name + ".mm_blender")
    repo = Path(__file__).resolve().parent.parent
    if (repo / "mm_blender" / "__init__.py").is_file():
        sys.path.insert(0, str(repo))
        return importlib.import_module("mm_blender")
    raise SystemExit("mm_blender not found: install the extension or run from the repository")
