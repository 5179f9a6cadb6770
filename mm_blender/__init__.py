"""mm_blender: matrix multiplications and whole expressions as native Blender scenes.

The pure core (`core/`, `models/`, `interop/`) imports no bpy; `scene/`, `render/` and `ui/`
do. `register`/`unregister` are the Blender extension hooks (they load the UI lazily, so
`import mm_blender` works without Blender).

The API: `mm_blender.load_spec`, `plan_spec`, `build`, `render_still`, `show` (a picture for
notebooks), ... as in api.py; none of them imports bpy until it builds or renders.
"""

__version__ = "0.1.0"

from .api import (build, build_plan, check_output, load_spec, plan_spec,  # noqa: E402,F401
                  render_animation, render_still, reset_file, save_blend)
from .errors import MMError  # noqa: E402,F401
from .notebook import Picture, show  # noqa: E402,F401


def trace(fn, *args, **kwargs):
    """Run fn(*args, **kwargs) with PyTorch and return the largest tree of matmuls it
    performed as a Spec (see mm_blender/tracing/). Needs torch; imported only here."""
    from .tracing import trace as _trace
    return _trace(fn, *args, **kwargs)


def register():
    from . import ui
    ui.register()


def unregister():
    from . import ui
    ui.unregister()
