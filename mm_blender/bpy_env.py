"""Keep the bpy wheel from writing into the user's ~/.config/blender and ~/.cache: point
Blender's user folders at a per-run temporary folder before `import bpy` (no-op inside a
real Blender, where bpy is already loaded, or when the variables are set already)."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

from . import outputs


def _remove_blender_tempdir() -> None:
    """Blender's own per-session temp folder (it removes it at a normal exit only)."""
    bpy = sys.modules.get("bpy")
    tempdir = getattr(getattr(bpy, "app", None), "tempdir", "") if bpy else ""
    if tempdir and os.path.basename(os.path.normpath(tempdir)).startswith("blender_"):
        shutil.rmtree(tempdir, ignore_errors=True)


def prepare() -> None:
    if "bpy" in sys.modules:
        return
    # our own caches (real-model captures) stay in the user's cache folder across runs
    os.environ.setdefault("MM_BLENDER_USER_CACHE", os.environ.get("XDG_CACHE_HOME") or
                          os.path.join(os.path.expanduser("~"), ".cache"))
    base = os.environ.get("MM_BLENDER_RUNTIME_DIR")
    if not base:
        base = tempfile.mkdtemp(prefix="mm_blender_")
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        outputs.on_interrupt(lambda: shutil.rmtree(base, ignore_errors=True))
    outputs.on_interrupt(_remove_blender_tempdir)
    for var, sub in (("BLENDER_USER_RESOURCES", "resources"),
                     ("BLENDER_USER_EXTENSIONS", "extensions"),
                     ("XDG_CACHE_HOME", "cache")):
        if not os.environ.get(var):
            path = os.path.join(base, sub)
            os.makedirs(path, exist_ok=True)
            os.environ[var] = path
