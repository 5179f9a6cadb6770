"""Materials and world for the two looks: "dark" (mm's black background, cells near unlit) and
"paper" (white background, softly lit cells for print). Colours themselves come from the plan.

One material per look serves every cell of every matrix: it reads the per-instance `color`
attribute (Attribute node, type INSTANCER). Materials and worlds are shared datablocks, named
after the look and reused; they carry `mm_shared` so a build's removal drops them once unused.
"""
from __future__ import annotations

import bpy

from ..errors import MMError

LOOKS = ("dark", "paper")
VERSION = 2

# Label text colour per look (linear RGB).
LABEL_COLOR = {"dark": (0.75, 0.75, 1.0, 1.0), "paper": (0.02, 0.02, 0.03, 1.0)}


def check_look(look: str) -> str:
    if look not in LOOKS:
        raise MMError(f"unknown look {look!r}: expected one of {', '.join(LOOKS)}")
    return look


def _reuse(collection, name: str):
    existing = collection.get(name)
    if existing is not None and existing.get("mm_version") == VERSION:
        return existing, True
    return None, False


def _new_material(name: str):
    mat = bpy.data.materials.new(name)
    mat["mm_version"] = VERSION
    mat["mm_shared"] = True
    if bpy.app.version < (5, 0, 0):   # 5.0 always uses nodes (the flag is deprecated)
        mat.use_nodes = True
    mat.node_tree.nodes.clear()
    return mat


def _link(tree, a, b):
    tree.links.new(a, b)


def cells_material(look: str):
    """Material for cells: colour from the instancer's `color`, shaded for the look."""
    name = f"mm_cells.{check_look(look)}"
    mat, found = _reuse(bpy.data.materials, name)
    if found:
        return mat
    mat = _new_material(name)
    nt = mat.node_tree
    n = nt.nodes
    # Cubes are instances (colour on the instancer); spheres a point cloud (colour on the
    # geometry, as `cell_color`). Each lookup is black where absent, so their sum is the one.
    on_instance = n.new("ShaderNodeAttribute")
    on_instance.attribute_type = "INSTANCER"
    on_instance.attribute_name = "color"
    on_points = n.new("ShaderNodeAttribute")
    on_points.attribute_type = "GEOMETRY"
    on_points.attribute_name = "cell_color"        # nodes.POINT_COLOR
    colour = n.new("ShaderNodeVectorMath")
    colour.operation = "ADD"
    _link(nt, on_instance.outputs["Color"], colour.inputs[0])
    _link(nt, on_points.outputs["Color"], colour.inputs[1])
    cell_colour = colour.outputs["Vector"]
    out = n.new("ShaderNodeOutputMaterial")
    if look == "dark":
        # mm draws unlit points: emission carries the colour, a little diffuse gives the
        # cells enough shading to read as solids.
        emit = n.new("ShaderNodeEmission")
        emit.inputs["Strength"].default_value = 0.8
        diffuse = n.new("ShaderNodeBsdfDiffuse")
        add = n.new("ShaderNodeAddShader")
        _link(nt, cell_colour, emit.inputs["Color"])
        _link(nt, cell_colour, diffuse.inputs["Color"])
        _link(nt, emit.outputs[0], add.inputs[0])
        _link(nt, diffuse.outputs[0], add.inputs[1])
        _link(nt, add.outputs[0], out.inputs["Surface"])
    else:
        # Print: a matte surface under soft light, with a touch of emission so shadowed
        # faces keep their hue.
        bsdf = n.new("ShaderNodeBsdfPrincipled")
        bsdf.inputs["Roughness"].default_value = 0.7
        spec = "Specular IOR Level" if "Specular IOR Level" in bsdf.inputs else "Specular"
        bsdf.inputs[spec].default_value = 0.1
        _link(nt, cell_colour, bsdf.inputs["Base Color"])
        _link(nt, cell_colour, bsdf.inputs["Emission Color"]
              if "Emission Color" in bsdf.inputs else bsdf.inputs["Emission"])
        bsdf.inputs["Emission Strength"].default_value = 0.1
        _link(nt, bsdf.outputs[0], out.inputs["Surface"])
    return mat


def decor_material():
    """Lines and flow guides: unlit colour from the geometry's `decor_color`, alpha = coverage.
    Shadow rays pass through, so guides never darken cells."""
    name = "mm_decor"
    mat, found = _reuse(bpy.data.materials, name)
    if found:
        return mat
    mat = _new_material(name)
    nt = mat.node_tree
    n = nt.nodes
    attr = n.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = "decor_color"     # decor.DECOR_COLOR
    emit = n.new("ShaderNodeEmission")
    transparent = n.new("ShaderNodeBsdfTransparent")
    path = n.new("ShaderNodeLightPath")
    not_shadow = n.new("ShaderNodeMath")
    not_shadow.operation = "SUBTRACT"
    not_shadow.inputs[0].default_value = 1.0
    coverage = n.new("ShaderNodeMath")
    coverage.operation = "MULTIPLY"
    mix = n.new("ShaderNodeMixShader")
    out = n.new("ShaderNodeOutputMaterial")
    _link(nt, attr.outputs["Color"], emit.inputs["Color"])
    _link(nt, path.outputs["Is Shadow Ray"], not_shadow.inputs[1])
    _link(nt, attr.outputs["Alpha"], coverage.inputs[0])
    _link(nt, not_shadow.outputs[0], coverage.inputs[1])
    _link(nt, coverage.outputs[0], mix.inputs["Fac"])
    _link(nt, transparent.outputs[0], mix.inputs[1])
    _link(nt, emit.outputs[0], mix.inputs[2])
    _link(nt, mix.outputs[0], out.inputs["Surface"])
    if hasattr(mat, "surface_render_method"):
        mat.surface_render_method = "BLENDED"   # EEVEE: true translucency
    return mat


def label_material(look: str):
    """Unlit text in the look's label colour."""
    name = f"mm_label.{check_look(look)}"
    mat, found = _reuse(bpy.data.materials, name)
    if found:
        return mat
    mat = _new_material(name)
    nt = mat.node_tree
    emit = nt.nodes.new("ShaderNodeEmission")
    emit.inputs["Color"].default_value = LABEL_COLOR[look]
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    _link(nt, emit.outputs[0], out.inputs["Surface"])
    mat.diffuse_color = LABEL_COLOR[look]   # what Workbench shows
    return mat


def world(look: str):
    """Black (dark) or white (paper) background. Paper lights the scene with a softer
    ambient than the white the camera sees, so cells don't wash out."""
    name = f"mm_world.{check_look(look)}"
    w, found = _reuse(bpy.data.worlds, name)
    if found:
        return w
    w = bpy.data.worlds.new(name)
    w["mm_version"] = VERSION
    w["mm_shared"] = True
    if bpy.app.version < (5, 0, 0):
        w.use_nodes = True
    nt = w.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputWorld")
    if look == "dark":
        bg = nt.nodes.new("ShaderNodeBackground")
        bg.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
        _link(nt, bg.outputs[0], out.inputs["Surface"])
        w.color = (0.0, 0.0, 0.0)
    else:
        seen = nt.nodes.new("ShaderNodeBackground")
        seen.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        ambient = nt.nodes.new("ShaderNodeBackground")
        ambient.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        ambient.inputs["Strength"].default_value = 0.45
        path = nt.nodes.new("ShaderNodeLightPath")
        mix = nt.nodes.new("ShaderNodeMixShader")
        _link(nt, path.outputs["Is Camera Ray"], mix.inputs["Fac"])
        _link(nt, ambient.outputs[0], mix.inputs[1])
        _link(nt, seen.outputs[0], mix.inputs[2])
        _link(nt, mix.outputs[0], out.inputs["Surface"])
        w.color = (1.0, 1.0, 1.0)
    return w


def apply_render_look(scene) -> None:
    """Standard view transform, so the plan's colours land on screen as given (not washed
    out); and short light paths: cells are near unlit, more bounces only cost time."""
    cycles = getattr(scene, "cycles", None)
    if cycles is not None:
        cycles.max_bounces = 4
        cycles.diffuse_bounces = 2
        cycles.glossy_bounces = 1
        cycles.transmission_bounces = 1
        cycles.volume_bounces = 0
        cycles.transparent_max_bounces = 8
        cycles.caustics_reflective = False
        cycles.caustics_refractive = False
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
