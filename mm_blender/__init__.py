"""mm_blender: matrix multiplications and whole expressions as native Blender scenes.

The pure core (`core/`, `models/`, `interop/`) imports no bpy; `scene/`, `render/` and `ui/`
do. `register`/`unregister` are the Blender extension hooks (they load the UI lazily, so
`import mm_blender` works without Blender).
"""

__version__ = "0.1.0"


def register():
    from . import ui
    ui.register()


def unregister():
    from . import ui
    ui.unregister()
