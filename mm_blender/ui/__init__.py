"""The Blender-facing door: property groups, operators and the sidebar panel (View3D >
Sidebar > MM). `register`/`unregister` add and remove all of it and nothing else (no
handlers, no timers)."""
import bpy

from . import operators, panel, props

CLASSES = (*props.CLASSES, *operators.CLASSES, *panel.CLASSES)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    setattr(bpy.types.Scene, props.SCENE_ATTR,
            bpy.props.PointerProperty(type=props.MM_PG_settings))


def unregister():
    if hasattr(bpy.types.Scene, props.SCENE_ATTR):
        delattr(bpy.types.Scene, props.SCENE_ATTR)
    for cls in reversed(CLASSES):
        if getattr(bpy.types, cls.__name__, None) is cls or cls.is_registered:
            bpy.utils.unregister_class(cls)
