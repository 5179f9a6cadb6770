"""The sidebar tab "MM" in the 3D viewport: a main panel (preset, expression, buttons) and
collapsible sub-panels, one per preset section. Drawing only: values live in
`scene.mm_blender`, and buttons run the operators."""
import bpy

from . import actions
from . import presets as ui_presets
from .props import EXTRA_FIELDS, selected_node, settings_of

CATEGORY = "MM"


class _MMPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY


def _extra(layout, group):
    """Spec fields added after this panel was written (see props._complete)."""
    for key in EXTRA_FIELDS.get(type(group).__name__, ()):
        layout.prop(group, key)


def _wrapped(layout, text, width_px, icon="NONE"):
    import textwrap
    chars = max(20, int(width_px / 7))
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, chars) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1" if icon != "NONE" else "NONE")


class MM_UL_nodes(bpy.types.UIList):
    """The expression tree, one row per node, indented by depth."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        for _ in range(item.depth):
            row.label(text="", icon="BLANK1")
        icon = "MESH_CUBE" if item.kind == "MATMUL" else "MESH_GRID"
        row.label(text=item.name, icon=icon)
        sub = row.row()
        sub.alignment = "RIGHT"
        sub.label(text=f"{item.rows}x{item.cols}")

    def filter_items(self, context, data, propname):
        return [], []      # keep the tree's own order; no sorting


class MM_PT_main(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_main"
    bl_label = "Matrix Multiplication"

    def draw(self, context):
        settings = settings_of(context.scene)
        layout = self.layout
        row = layout.row(align=True)
        row.prop(settings, "preset", text="")
        row.operator("mm.load_preset", text="Load", icon="IMPORT")
        if settings.preset:
            box = layout.column(align=True)
            box.scale_y = 0.8
            for line in ui_presets.description_lines(settings.preset,
                                                     max(20, context.region.width // 7)):
                box.label(text=line)

        layout.prop(settings, "name")
        layout.prop(settings, "expr", text="", icon="EXPORT", placeholder="A @ B")
        if settings.expr_error:
            _wrapped(layout.box(), settings.expr_error, context.region.width, icon="ERROR")

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("mm.build", icon="PLAY")
        row.operator("mm.clear", icon="TRASH")
        layout.operator("mm.frame_camera", icon="CAMERA_DATA")

        row = layout.row(align=True)
        row.prop(settings, "link", text="", icon="URL", placeholder="Paste mm link")
        row.operator("mm.import_link", text="", icon="PASTEDOWN")
        layout.operator("mm.trace_file", icon="SCRIPT")


def draw_leaf(layout, row, leaf):
    box = layout.box()
    box.label(text=f"{row.name}: {leaf.h} x {leaf.w}", icon="MESH_GRID")
    shape = box.row(align=True)
    shape.prop(leaf, "h")
    shape.prop(leaf, "w")
    box.prop(leaf, "init")
    if leaf.init in ("rows", "cols", "row major", "col major", "uniform", "gaussian"):
        rng = box.row(align=True)
        rng.prop(leaf, "min")
        rng.prop(leaf, "max")
    if leaf.init in ("rows", "cols", "row major", "col major", "uniform", "gaussian",
                     "pt linear"):
        box.prop(leaf, "dropout")
    if leaf.init == "expr":
        box.prop(leaf, "formula")
    elif leaf.init == "file":
        box.prop(leaf, "file")
        box.prop(leaf, "tensor")
    elif leaf.init == "url":
        box.prop(leaf, "url")
        if not actions.online_access():
            box.label(text="Online access is off (Preferences > System)", icon="ERROR")
    elif leaf.init == "transpose":
        box.prop(leaf, "source")
    _extra(box, leaf)


def draw_matmul(layout, row, mm, settings):
    box = layout.box()
    box.label(text=f"{row.name}: {row.rows} x {row.cols}", icon="MESH_CUBE")
    box.prop(mm, "epilogue")
    box.prop(mm, "alg")
    box.prop(mm, "k_blocks")
    box.prop(mm, "custom_placement")
    if mm.custom_placement:
        col = box.column(align=True)
        col.active = settings.layout.scheme == "custom"
        for key in ("polarity", "left_placement", "right_placement", "result_placement"):
            col.prop(mm, key)
    _extra(box, mm)


class MM_PT_matrices(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_matrices"
    bl_parent_id = "MM_PT_main"
    bl_label = "Matrices"

    def draw(self, context):
        settings = settings_of(context.scene)
        layout = self.layout
        layout.template_list("MM_UL_nodes", "", settings, "nodes", settings, "node_index",
                             rows=min(max(len(settings.nodes), 3), 12))
        row, item = selected_node(settings)
        if row is None or item is None:
            layout.label(text="Load a preset or write an expression", icon="INFO")
        elif row.kind == "LEAF":
            draw_leaf(layout, row, item)
        else:
            draw_matmul(layout, row, item, settings)
        layout.prop(settings, "seed")


class MM_PT_layout(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_layout"
    bl_parent_id = "MM_PT_main"
    bl_label = "Layout"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        lay = settings_of(context.scene).layout
        layout = self.layout
        layout.use_property_split = True
        layout.prop(lay, "scheme")
        col = layout.column(align=True)
        for key in ("polarity", "left_placement", "right_placement", "result_placement"):
            col.prop(lay, key)
        col = layout.column(align=True)
        for key in ("gap", "scatter", "molecule", "blast"):
            col.prop(lay, key)
        _extra(layout, lay)


class MM_PT_partition(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_partition"
    bl_parent_id = "MM_PT_main"
    bl_label = "Partition"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        blocks = settings_of(context.scene).blocks
        layout = self.layout
        layout.use_property_split = True
        col = layout.column(align=True)
        for key in ("i", "j", "k"):
            col.prop(blocks, key)
        _extra(layout, blocks)
        layout.label(text="Inner matmuls: K Blocks under Matrices", icon="INFO")


class MM_PT_animation(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_animation"
    bl_parent_id = "MM_PT_main"
    bl_label = "Animation"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        anim = settings_of(context.scene).anim
        layout = self.layout
        layout.use_property_split = True
        layout.prop(anim, "alg")
        layout.prop(anim, "fuse")
        col = layout.column(align=True)
        for key in ("speed", "frames_per_step", "seconds", "spin"):
            col.prop(anim, key)
        layout.prop(anim, "hide_inputs")
        _extra(layout, anim)


class MM_PT_look(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_look"
    bl_parent_id = "MM_PT_main"
    bl_label = "Look"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = settings_of(context.scene)
        layout = self.layout
        layout.use_property_split = True
        layout.prop(settings.look, "background")
        layout.prop(settings.look, "view")
        layout.prop(settings.look, "camera")
        viz = settings.viz
        layout.prop(viz, "cell_shape")
        layout.prop(viz, "colormap")
        layout.prop(viz, "sensitivity")
        col = layout.column(align=True)
        for key in ("elem_scale", "min_size", "min_light", "max_light"):
            col.prop(viz, key)
        col = layout.column(align=True)
        for key in ("zero_hue", "hue_gap", "hue_spread"):
            col.prop(viz, key)
        deco = settings.deco
        col = layout.column(heading="Guides", align=True)
        for key in ("legends", "row_guides", "flow_guides"):
            col.prop(deco, key)
        col.prop(deco, "shape_labels")
        col.prop(deco, "outlines")
        for group in (settings.look, viz):
            _extra(layout, group)


class MM_PT_lens(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_lens"
    bl_parent_id = "MM_PT_main"
    bl_label = "Lens, Spotlight, Axes"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        deco = settings_of(context.scene).deco
        layout = self.layout
        layout.use_property_split = True
        col = layout.column(heading="Lens", align=True)
        col.prop(deco, "lens", text="Build With Lens")
        for key in ("lens_size", "magnification", "lens_decimals", "lens_row", "lens_col"):
            col.prop(deco, key)
        layout.operator("mm.add_lens", icon="VIEWZOOM")
        col = layout.column(heading="Spotlight", align=True)
        for key in ("spotlight_row", "spotlight_col", "spotlight_matmul", "spotlight"):
            col.prop(deco, key)
        col.prop(deco, "interior_spotlight")
        layout.prop(deco, "axes")
        _extra(layout, deco)


class MM_PT_model(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_model"
    bl_parent_id = "MM_PT_main"
    bl_label = "Real Model"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_header(self, context):
        self.layout.prop(settings_of(context.scene), "use_model", text="")

    def draw(self, context):
        settings = settings_of(context.scene)
        layout = self.layout
        layout.use_property_split = True
        layout.active = settings.use_model
        model = settings.model
        layout.prop(model, "model")
        col = layout.column(align=True)
        for key in ("layer", "head", "tokens"):
            col.prop(model, key)
        layout.prop(model, "text")
        layout.prop(model, "capture")
        layout.prop(model, "rope_theta")
        _extra(layout, model)


class MM_PT_render(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_render"
    bl_parent_id = "MM_PT_main"
    bl_label = "Render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        r = settings_of(context.scene).render
        layout = self.layout
        layout.use_property_split = True
        col = layout.column(align=True)
        col.prop(r, "resolution_x", text="Resolution X")
        col.prop(r, "resolution_y", text="Y")
        layout.prop(r, "samples")
        layout.prop(r, "engine")
        layout.prop(r, "device")
        layout.prop(r, "still_path")
        layout.operator("mm.render_still", icon="RENDER_STILL")
        layout.prop(r, "video")
        layout.prop(r, "animation_path")
        layout.operator("mm.render_animation", icon="RENDER_ANIMATION")


class MM_PT_user_presets(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_user_presets"
    bl_parent_id = "MM_PT_main"
    bl_label = "Your Presets"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = settings_of(context.scene)
        layout = self.layout
        row = layout.row(align=True)
        row.prop(settings, "user_preset_name", text="", placeholder="name")
        row.operator("mm.save_preset", text="Save", icon="FILE_TICK")
        layout.prop(settings, "description")
        layout.prop(settings, "group")
        saved = ui_presets.user_presets()
        if not saved:
            layout.label(text="No saved presets yet")
        col = layout.column(align=True)
        for info in saved:
            row = col.row(align=True)
            op = row.operator("mm.load_preset", text=info.name, icon="PRESET")
            op.name = info.name
            op = row.operator("mm.delete_preset", text="", icon="X")
            op.name = info.name


class MM_PT_selection(_MMPanel, bpy.types.Panel):
    bl_idname = "MM_PT_selection"
    bl_parent_id = "MM_PT_main"
    bl_label = "Selected Matrix"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and "mm_name" in obj

    def draw(self, context):
        info = actions.matrix_info(context.active_object)
        layout = self.layout
        if info is None:
            layout.label(text="Not a matrix of a build")
            return
        col = layout.column(align=True)
        col.label(text=f"{info['name']}  ({info['role']})", icon="MESH_GRID")
        col.label(text=f"Shape: {info['rows']} x {info['cols']}  "
                       f"({info['rows'] * info['cols']:,} cells)")
        if info["min"] is not None:
            col.label(text=f"Values: {info['min']:.4g} to {info['max']:.4g}")
        if info["epilogue"] and info["epilogue"] != "none":
            col.label(text=f"Epilogue: {info['epilogue']}")
        if info["build"]:
            col.label(text=f"Build: {info['build']}")


CLASSES = (MM_UL_nodes, MM_PT_main, MM_PT_matrices, MM_PT_selection, MM_PT_layout,
           MM_PT_partition, MM_PT_animation, MM_PT_look, MM_PT_lens, MM_PT_model, MM_PT_render,
           MM_PT_user_presets)
