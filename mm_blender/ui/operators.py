"""Operators: each parses its few arguments and calls one function of `actions` (which calls
the same api as the CLI). A user error (MMError) becomes an ERROR report and CANCELLED."""
import bpy
from bpy.props import IntProperty, StringProperty

from ..errors import MMError
from . import actions
from .props import settings_of


class _MMOperator:
    """Shared error handling: `run` returns a message to report (or None)."""

    def execute(self, context):
        try:
            message = self.run(context)
        except MMError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        if message:
            self.report({"INFO"}, message)
        return {"FINISHED"}

    def run(self, context):  # pragma: no cover - every operator defines it
        raise NotImplementedError


class MM_OT_load_preset(_MMOperator, bpy.types.Operator):
    """Fill the panel from a preset (built-in or saved)"""
    bl_idname = "mm.load_preset"
    bl_label = "Load Preset"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Preset", description="Preset name (empty: the picker's choice)",
                         default="", options={"SKIP_SAVE"})

    def run(self, context):
        settings = settings_of(context.scene)
        name = self.name or settings.preset
        if not name:
            raise MMError("pick a preset first")
        actions.load_preset(settings, name)
        try:
            settings.preset = name      # the picker shows what was loaded
        except TypeError:
            pass                        # (a file added since the picker last listed them)
        return f"loaded preset {name!r}: {settings.expr}"


class MM_OT_build(_MMOperator, bpy.types.Operator):
    """Build the panel's expression as a scene (replaces an earlier build of the same name)"""
    bl_idname = "mm.build"
    bl_label = "Build"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        with actions.Progress(context, "Building") as progress:
            spec, collection = actions.build(context.scene, settings_of(context.scene), progress)
        return f"built {collection.name}: {spec.cell_count():,} cells"


class MM_OT_clear(_MMOperator, bpy.types.Operator):
    """Remove every mm build from this scene"""
    bl_idname = "mm.clear"
    bl_label = "Clear"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        count = actions.clear(context.scene)
        return f"removed {count} build{'s' if count != 1 else ''}"


class MM_OT_frame_camera(_MMOperator, bpy.types.Operator):
    """Reframe the build's camera (render aspect ratio and the panel's view) and look through it"""
    bl_idname = "mm.frame_camera"
    bl_label = "Frame Camera"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        actions.frame_camera(context.scene, settings_of(context.scene).look.view)
        space = getattr(context, "space_data", None)
        if space is not None and space.type == "VIEW_3D" and space.region_3d is not None:
            space.region_3d.view_perspective = "CAMERA"
        return None


class MM_OT_add_lens(_MMOperator, bpy.types.Operator):
    """Add mm's magnifier lens to the build: move the Empty and the cells under it show
    their values"""
    bl_idname = "mm.add_lens"
    bl_label = "Add Lens"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        empty = actions.add_lens(context.scene, settings_of(context.scene))
        return f"added {empty.name}: move it over the cells to read their values"


class MM_OT_render_still(_MMOperator, bpy.types.Operator):
    """Render the scene's camera view to the still image path"""
    bl_idname = "mm.render_still"
    bl_label = "Render Still"
    bl_options = {"REGISTER"}

    def run(self, context):
        with actions.Progress(context, "Rendering") as progress:
            path = actions.render_still(context.scene, settings_of(context.scene), progress)
        return f"wrote {path}"


class MM_OT_render_animation(_MMOperator, bpy.types.Operator):
    """Render the scene's frame range as an MP4 video or a folder of PNG frames"""
    bl_idname = "mm.render_animation"
    bl_label = "Render Animation"
    bl_options = {"REGISTER"}

    def run(self, context):
        with actions.Progress(context, "Rendering") as progress:
            path = actions.render_animation(context.scene, settings_of(context.scene), progress)
        return f"wrote {path}"


class MM_OT_import_link(_MMOperator, bpy.types.Operator):
    """Load an mm link (?params=..., ?config=... or its JSON) into the panel"""
    bl_idname = "mm.import_link"
    bl_label = "Import mm Link"
    bl_options = {"REGISTER", "UNDO"}

    text: StringProperty(name="Link", description="The link (empty: the panel's link field)",
                         default="", options={"SKIP_SAVE"})

    def run(self, context):
        settings = settings_of(context.scene)
        _data, dropped = actions.import_link(settings, self.text or settings.link)
        if dropped:
            self.report({"WARNING"}, f"imported {settings.expr}; not kept: " + "; ".join(dropped))
            return None
        return f"imported {settings.expr}"


class MM_OT_save_preset(_MMOperator, bpy.types.Operator):
    """Save the panel's settings as a preset of your own (built-in presets are read-only)"""
    bl_idname = "mm.save_preset"
    bl_label = "Save Preset"
    bl_options = {"REGISTER"}

    name: StringProperty(name="Name", description="Preset name (empty: the panel's 'Save As')",
                         default="", options={"SKIP_SAVE"})

    def run(self, context):
        settings = settings_of(context.scene)
        name = self.name or settings.user_preset_name or settings.name
        path = actions.save_preset(settings, name)
        settings.user_preset_name = path.stem
        return f"saved preset {path.stem!r} to {path}"


class MM_OT_delete_preset(_MMOperator, bpy.types.Operator):
    """Delete one of your saved presets (built-in presets are read-only)"""
    bl_idname = "mm.delete_preset"
    bl_label = "Delete Preset"
    bl_options = {"REGISTER"}

    name: StringProperty(name="Name", default="", options={"SKIP_SAVE"})

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def run(self, context):
        path = actions.delete_preset(self.name)
        return f"deleted preset {self.name!r} ({path})"


class MM_OT_trace_file(_MMOperator, bpy.types.Operator):
    """Run a function from a Python file with PyTorch and draw the matmuls it performs (this
    runs the file's code; presets and links never run code)"""
    bl_idname = "mm.trace_file"
    bl_label = "Trace from a File"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="File", description="The Python file to run",
                             subtype="FILE_PATH", default="")
    function: StringProperty(name="Function", description="Called with no arguments",
                             default="main")
    root: StringProperty(name="Root", description="Draw the tree with this root (empty: "
                         "the largest)", default="")
    batch: IntProperty(name="Batch", description="Batch index of batched matmuls", default=0,
                       min=0)
    head: IntProperty(name="Head", description="Head index of multi-head matmuls", default=0,
                      min=0)

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self, width=420)

    def run(self, context):
        name, trees = actions.trace_file(settings_of(context.scene), self.filepath,
                                         self.function, self.root, self.batch, self.head)
        others = ", ".join(t.name for t in trees[1:])
        return (f"traced {self.function}() into preset {name!r}"
                + (f"; other trees: {others}" if others else ""))


CLASSES = (MM_OT_load_preset, MM_OT_build, MM_OT_clear, MM_OT_frame_camera, MM_OT_add_lens,
           MM_OT_render_still, MM_OT_render_animation, MM_OT_import_link, MM_OT_save_preset,
           MM_OT_delete_preset, MM_OT_trace_file)
