"""Geometry Nodes groups, written as versioned Python: the cell instancer and the line tubes.

A group is named `<base>.v<version>` and carries `mm_version`; an existing group of the same
version is reused, so many builds share one group. Bump the version when a tree changes.

Modifier inputs of the cell instancer (`CELLS_INPUTS`, name -> socket identifier). Keyframe
them by identifier, e.g. `obj.keyframe_insert('modifiers["mm_cells"]["Socket_2"]', frame=f)`:

    Cell Scale     Socket_2  float, multiplies the per-point `size` (1 = the plan's sizes)
    Shape          Socket_3  int, 0 = cube (instances), 1 = sphere (a point cloud)
    Cell Rotation  Socket_4  vector, Euler XYZ (radians) turning cells to the matrix's face
    Material       Socket_5  the cells' material (reads `color` with an INSTANCER attribute)

The point attributes `value`, `color` and `size` reach the instance domain (cubes) or the
point cloud (spheres, plus `cell_color`, the copy of `color` the material reads) unchanged.

The line tubes (`mm_lines` modifier on `<build>:lines`, `LINES_INPUTS`):

    Thickness Scale  Socket_2  float, multiplies the per-point `radius`
    Material         Socket_3  the decor material (reads `decor_color`)
"""
from __future__ import annotations

import bpy

CELLS_GROUP = "mm_cells"
CELLS_VERSION = 3
LINES_GROUP = "mm_lines"
LINES_VERSION = 1

CELLS_MODIFIER = "mm_cells"
LINES_MODIFIER = "mm_lines"

SHAPES = ("cube", "sphere")   # index = the Shape input
# Sphere cells (a point cloud) carry their colour under this name too (see cells_group).
POINT_COLOR = "cell_color"

# Interface order fixes the identifiers: Geometry in = Socket_0, Geometry out = Socket_1.
CELLS_INPUTS = {
    "Cell Scale": "Socket_2",
    "Shape": "Socket_3",
    "Cell Rotation": "Socket_4",
    "Material": "Socket_5",
}
LINES_INPUTS = {
    "Thickness Scale": "Socket_2",
    "Material": "Socket_3",
}


def group_name(base: str, version: int) -> str:
    return f"{base}.v{version}"


def _existing(base: str, version: int):
    group = bpy.data.node_groups.get(group_name(base, version))
    if group is not None and group.get("mm_version") == version:
        return group
    return None


def _new_group(base: str, version: int):
    group = bpy.data.node_groups.new(group_name(base, version), "GeometryNodeTree")
    group["mm_version"] = version
    group["mm_shared"] = True
    return group


class _Tree:
    """A tiny node-linking helper: `t.node(type, **inputs)` with inputs as values or sockets."""

    def __init__(self, group):
        self.group = group
        self.nodes = group.nodes
        self.links = group.links
        self.x = 0

    def node(self, bl_idname: str, props: dict | None = None, **inputs):
        node = self.nodes.new(bl_idname)
        node.location = (self.x, 0)
        self.x += 200
        for key, value in (props or {}).items():
            setattr(node, key, value)
        for key, value in inputs.items():
            self.set(node.inputs[key.replace("_", " ")], value)
        return node

    def set(self, socket, value):
        if isinstance(value, bpy.types.NodeSocket):
            self.links.new(value, socket)
        else:
            socket.default_value = value

    def link(self, out_socket, in_socket):
        self.links.new(out_socket, in_socket)


def _socket(group, name, in_out, socket_type, default=None, min_value=None, max_value=None,
            description=""):
    sock = group.interface.new_socket(name, in_out=in_out, socket_type=socket_type,
                                      description=description)
    if default is not None:
        sock.default_value = default
    if min_value is not None:
        sock.min_value = min_value
    if max_value is not None:
        sock.max_value = max_value
    return sock


def cells_group():
    """The cell renderer. Shape 0: a cube instanced on every point with size > 0 (point
    attributes become instance attributes). Shape 1 (the default): those points as a point
    cloud of spheres (diameter = size) -- Cycles draws point clouds natively, at 1.1M cells
    about 6x faster and with a third of the memory of instanced meshes (bench_scene.py)."""
    group = _existing(CELLS_GROUP, CELLS_VERSION)
    if group is not None:
        return group
    group = _new_group(CELLS_GROUP, CELLS_VERSION)
    _socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    _socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    _socket(group, "Cell Scale", "INPUT", "NodeSocketFloat", 1.0, 0.0, 10.0,
            "Multiplies every cell's size")
    _socket(group, "Shape", "INPUT", "NodeSocketInt", 0, 0, len(SHAPES) - 1,
            "0 = cube, 1 = sphere")
    _socket(group, "Cell Rotation", "INPUT", "NodeSocketVector", (0.0, 0.0, 0.0),
            description="Euler XYZ rotation aligning cells with the matrix's face")
    _socket(group, "Material", "INPUT", "NodeSocketMaterial")
    ids = {s.name: s.identifier for s in group.interface.items_tree
           if getattr(s, "in_out", "") == "INPUT"}
    assert all(ids[n] == i for n, i in CELLS_INPUTS.items()), ids

    t = _Tree(group)
    gin = t.node("NodeGroupInput")
    size = t.node("GeometryNodeInputNamedAttribute", props={"data_type": "FLOAT"},
                  Name="size")
    # Zero is not drawn (mm): only points with size > 0 become cells.
    visible = t.node("FunctionNodeCompare",
                     props={"data_type": "FLOAT", "operation": "GREATER_THAN"},
                     A=size.outputs["Attribute"], B=0.0)
    scale = t.node("ShaderNodeMath", props={"operation": "MULTIPLY"})
    t.link(size.outputs["Attribute"], scale.inputs[0])
    t.link(gin.outputs["Cell Scale"], scale.inputs[1])

    cube = t.node("GeometryNodeMeshCube", Size=(1.0, 1.0, 1.0))
    cube_mat = t.node("GeometryNodeSetMaterial", Geometry=cube.outputs["Mesh"],
                      Material=gin.outputs["Material"])
    rotation = t.node("FunctionNodeEulerToRotation", Euler=gin.outputs["Cell Rotation"])
    inst = t.node("GeometryNodeInstanceOnPoints", Points=gin.outputs["Geometry"],
                  Selection=visible.outputs["Result"], Instance=cube_mat.outputs["Geometry"],
                  Rotation=rotation.outputs["Rotation"])
    t.link(scale.outputs["Value"], inst.inputs["Scale"])

    radius = t.node("ShaderNodeMath", props={"operation": "MULTIPLY"})
    t.link(scale.outputs["Value"], radius.inputs[0])
    radius.inputs[1].default_value = 0.5
    # A cells object's points are mesh vertices; a sweep's products and highlights arrive
    # as a point cloud (sweep_nodes.py). Both become one point cloud of the drawn cells.
    parts = t.node("GeometryNodeSeparateComponents", Geometry=gin.outputs["Geometry"])
    points = t.node("GeometryNodeMeshToPoints", props={"mode": "VERTICES"},
                    Mesh=parts.outputs["Mesh"], Selection=visible.outputs["Result"],
                    Radius=radius.outputs["Value"])
    hidden = t.node("FunctionNodeBooleanMath", props={"operation": "NOT"})
    t.link(visible.outputs["Result"], hidden.inputs[0])
    kept = t.node("GeometryNodeDeleteGeometry", props={"domain": "POINT"},
                  Geometry=parts.outputs["Point Cloud"], Selection=hidden.outputs["Boolean"])
    sized = t.node("GeometryNodeSetPointRadius", Points=kept.outputs["Geometry"],
                   Radius=radius.outputs["Value"])
    joined = t.node("GeometryNodeJoinGeometry")
    t.link(sized.outputs["Points"], joined.inputs["Geometry"])
    t.link(points.outputs["Points"], joined.inputs["Geometry"])
    colour = t.node("GeometryNodeInputNamedAttribute", props={"data_type": "FLOAT_COLOR"},
                    Name="color")
    # Cycles finds no geometry attribute named "color"; the material reads this copy.
    store = t.node("GeometryNodeStoreNamedAttribute",
                   props={"data_type": "FLOAT_COLOR", "domain": "POINT"},
                   Geometry=joined.outputs["Geometry"], Name=POINT_COLOR,
                   Value=colour.outputs["Attribute"])
    points_mat = t.node("GeometryNodeSetMaterial", Geometry=store.outputs["Geometry"],
                        Material=gin.outputs["Material"])

    switch = t.node("GeometryNodeIndexSwitch", props={"data_type": "GEOMETRY"})
    t.link(gin.outputs["Shape"], switch.inputs["Index"])
    t.link(inst.outputs["Instances"], switch.inputs["Item_0"])
    t.link(points_mat.outputs["Geometry"], switch.inputs["Item_1"])
    gout = t.node("NodeGroupOutput")
    t.link(switch.outputs["Output"], gout.inputs[0])
    return group


def lines_group():
    """Edges of a mesh as round tubes: radius from the point attribute `radius`, which the
    edge mesh carries (so one object holds lines of several thicknesses)."""
    group = _existing(LINES_GROUP, LINES_VERSION)
    if group is not None:
        return group
    group = _new_group(LINES_GROUP, LINES_VERSION)
    _socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    _socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    _socket(group, "Thickness Scale", "INPUT", "NodeSocketFloat", 1.0, 0.0, 100.0,
            "Multiplies every line's thickness")
    _socket(group, "Material", "INPUT", "NodeSocketMaterial")
    ids = {s.name: s.identifier for s in group.interface.items_tree
           if getattr(s, "in_out", "") == "INPUT"}
    assert all(ids[n] == i for n, i in LINES_INPUTS.items()), ids

    t = _Tree(group)
    gin = t.node("NodeGroupInput")
    curve = t.node("GeometryNodeMeshToCurve", Mesh=gin.outputs["Geometry"])
    radius_attr = t.node("GeometryNodeInputNamedAttribute", props={"data_type": "FLOAT"},
                         Name="radius")
    radius = t.node("ShaderNodeMath", props={"operation": "MULTIPLY"})
    t.link(radius_attr.outputs["Attribute"], radius.inputs[0])
    t.link(gin.outputs["Thickness Scale"], radius.inputs[1])
    profile = t.node("GeometryNodeCurvePrimitiveCircle", props={"mode": "RADIUS"},
                     Resolution=6, Radius=1.0)
    tube = t.node("GeometryNodeCurveToMesh", Curve=curve.outputs["Curve"],
                  Profile_Curve=profile.outputs["Curve"])
    if "Scale" in tube.inputs:   # 4.2+: the profile scale is an explicit input
        t.link(radius.outputs["Value"], tube.inputs["Scale"])
    else:  # pragma: no cover - older Blender scales the profile by the curve radius
        set_radius = t.node("GeometryNodeSetCurveRadius", Curve=curve.outputs["Curve"],
                            Radius=radius.outputs["Value"])
        t.link(set_radius.outputs["Curve"], tube.inputs["Curve"])
    mat = t.node("GeometryNodeSetMaterial", Geometry=tube.outputs["Mesh"],
                 Material=gin.outputs["Material"])
    gout = t.node("NodeGroupOutput")
    t.link(mat.outputs["Geometry"], gout.inputs[0])
    return group


def add_modifier(obj, group, name: str, inputs: dict, values: dict):
    """Attach `group` to `obj` as modifier `name`, setting inputs by their names."""
    mod = obj.modifiers.new(name, "NODES")
    mod.node_group = group
    for key, value in values.items():
        mod[inputs[key]] = value
    return mod
