"""build(plan): objects, attributes, metadata, rebuilds, rollback (synthetic plans)."""
import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from mm_blender.errors import MMError
from mm_blender.scene import build as buildmod
from mm_blender.scene import camera as cameramod
from mm_blender.scene import cells, nodes
from mm_blender.scene.build import build, find, remove


def matrix_objects(coll):
    return {o["mm_key"]: o for o in coll.all_objects if "mm_key" in o}


def instance_count(obj) -> int:
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = obj.evaluated_get(dg).evaluated_geometry()   # keep the GeometrySet alive
    cloud = geometry.instances_pointcloud()
    return 0 if cloud is None else len(cloud.points)


def cell_count(obj) -> int:
    """Drawn cells of either shape: cube instances, or the points of the sphere cloud."""
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = obj.evaluated_get(dg).evaluated_geometry()
    instances = geometry.instances_pointcloud()
    cloud = instances if instances is not None else geometry.pointcloud
    return 0 if cloud is None else len(cloud.points)


def counts():
    return {attr: len(getattr(bpy.data, attr)) for attr in (
        "objects", "meshes", "curves", "materials", "node_groups", "collections", "cameras",
        "lights", "images", "worlds", "fonts", "actions")}


def test_metadata_contract(matmul_plan):
    plan = matmul_plan()
    coll = build(plan)
    assert coll.name == plan.name and find(plan.name) == coll
    objs = matrix_objects(coll)
    assert set(objs) == {"L", "R", "L@R"}
    for m in plan.matrices:
        o = objs[m.key]
        assert o.name == f"{plan.name}:{m.key}"
        assert (o["mm_name"], o["mm_rows"], o["mm_cols"], o["mm_role"]) == \
            (m.name, m.rows, m.cols, m.role)
    res = objs["L@R"]
    assert res["mm_left"] == objs["L"].name and res["mm_right"] == objs["R"].name
    assert res["mm_epilogue"] == "none"
    assert "mm_left" not in objs["L"]
    assert bpy.context.scene.camera is not None
    assert bpy.context.scene.camera.name in coll.objects
    assert bpy.context.scene.view_settings.view_transform == "Standard"


def test_positions_and_attributes_equal_plan(matmul_plan):
    plan = matmul_plan()
    coll = build(plan)
    objs = matrix_objects(coll)
    for m in plan.matrices:
        o = objs[m.key]
        assert np.array_equal(cells.read_positions(o), m.positions)
        assert np.array_equal(cells.read_values(o), m.values, equal_nan=True)
        col = np.empty(len(m.values) * 4, np.float32)
        o.data.attributes["color"].data.foreach_get("color", col)
        assert np.array_equal(col.reshape(-1, 4), m.colors)
        assert o.data.attributes["color"].data_type == "FLOAT_COLOR"
        assert tuple(o.matrix_world.translation) == (0, 0, 0)


def test_values_survive_save_and_reopen(tmp_path, matmul_plan):
    plan = matmul_plan()
    build(plan)
    path = str(tmp_path / "saved.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=path)
    for m in plan.matrices:
        o = bpy.data.objects[f"{plan.name}:{m.key}"]
        out = np.empty(len(o.data.vertices), np.float32)
        o.data.attributes["value"].data.foreach_get("value", out)
        assert np.array_equal(out, m.values, equal_nan=True)   # exact, NaN included
    assert find(plan.name) is not None


def test_instances_only_for_nonzero_cells(matmul_plan):
    plan = matmul_plan()
    coll = build(plan)
    for key, o in matrix_objects(coll).items():
        sizes = plan.matrix(key).sizes
        assert (sizes == 0).any() or key == "L@R"
        assert cell_count(o) == int((sizes > 0).sum())


def test_instances_carry_value_and_color(matmul_plan):
    plan = matmul_plan()
    o = matrix_objects(build(plan, shape="cube"))["L"]
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = o.evaluated_get(dg).evaluated_geometry()
    cloud = geometry.instances_pointcloud()
    names = {a.name for a in cloud.attributes}
    assert {"value", "color", "size"} <= names
    got = np.empty(len(cloud.points), np.float32)
    cloud.attributes["value"].data.foreach_get("value", got)
    m = plan.matrix("L")
    assert np.array_equal(got, m.values[m.sizes > 0])


def test_modifier_inputs_are_documented_identifiers(matmul_plan):
    o = matrix_objects(build(matmul_plan()))["L"]
    mod = o.modifiers[nodes.CELLS_MODIFIER]
    items = {s.name: s.identifier for s in mod.node_group.interface.items_tree
             if getattr(s, "in_out", "") == "INPUT"}
    for name, ident in nodes.CELLS_INPUTS.items():
        assert items[name] == ident
    assert mod[nodes.CELLS_INPUTS["Cell Scale"]] == 1.0
    # keyframable by identifier, and the instance scale follows
    o.keyframe_insert(f'modifiers["{nodes.CELLS_MODIFIER}"]["{nodes.CELLS_INPUTS["Cell Scale"]}"]',
                      frame=1)
    mod[nodes.CELLS_INPUTS["Cell Scale"]] = 0.5
    o.update_tag()
    assert cell_count(o) == int((matmul_plan().matrix("L").sizes > 0).sum())


def point_cloud(obj):
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = obj.evaluated_get(dg).evaluated_geometry()
    return geometry, geometry.pointcloud


def test_spheres_are_a_point_cloud_of_nonzero_cells(matmul_plan):
    plan = matmul_plan()
    objs = matrix_objects(build(plan, shape="sphere"))
    for key, o in objs.items():
        m = plan.matrix(key)
        geometry, cloud = point_cloud(o)
        assert cloud is not None and geometry.instances_pointcloud() is None
        visible = m.sizes > 0
        assert len(cloud.points) == int(visible.sum())
        got = np.empty(len(cloud.points), np.float32)
        cloud.attributes["value"].data.foreach_get("value", got)
        assert np.array_equal(got, m.values[visible], equal_nan=True)
        radius = np.empty(len(cloud.points), np.float32)
        cloud.attributes["radius"].data.foreach_get("value", radius)
        assert np.allclose(radius, m.sizes[visible] / 2)
        col = np.empty(len(cloud.points) * 4, np.float32)
        cloud.attributes[nodes.POINT_COLOR].data.foreach_get("color", col)
        assert np.array_equal(col.reshape(-1, 4), m.colors[visible])
    # the Shape input switches back to cubes
    o = objs["L"]
    o.modifiers[nodes.CELLS_MODIFIER][nodes.CELLS_INPUTS["Shape"]] = 0
    o.update_tag()
    assert instance_count(o) == int((plan.matrix("L").sizes > 0).sum())


def test_node_groups_and_materials_are_shared_and_versioned(matmul_plan):
    build(matmul_plan("one"))
    build(matmul_plan("two"))
    groups = [g for g in bpy.data.node_groups if g.name.startswith("mm_cells")]
    assert [g.name for g in groups] == [f"mm_cells.v{nodes.CELLS_VERSION}"]
    assert groups[0]["mm_version"] == nodes.CELLS_VERSION
    assert len([m for m in bpy.data.materials if m.name.startswith("mm_cells")]) == 1


def test_no_leaks_after_ten_rebuilds(matmul_plan):
    plan = matmul_plan()
    build(plan)
    first = counts()
    for _ in range(10):
        build(plan)
    assert counts() == first
    assert [c.name for c in bpy.data.collections] == [plan.name]
    assert sorted(o.name for o in bpy.data.objects) == sorted(
        o.name for o in find(plan.name).objects)
    assert not any(o.name.endswith(".001") for o in bpy.data.objects)


def test_keyframed_builds_leave_no_actions_behind(matmul_plan):
    plan = matmul_plan()
    path = f'modifiers["{nodes.CELLS_MODIFIER}"]["{nodes.CELLS_INPUTS["Cell Scale"]}"]'
    for _ in range(3):
        o = matrix_objects(build(plan))["L"]
        o.keyframe_insert(path, frame=1)
        assert len(bpy.data.actions) == 1
    remove(plan.name)
    assert len(bpy.data.actions) == 0


def test_remove_leaves_nothing(matmul_plan):
    before = counts()
    plan = matmul_plan()
    build(plan, look="paper")
    assert remove(plan.name)
    after = counts()
    after["worlds"] -= 1          # the scene keeps using the build's world
    after["fonts"] = before["fonts"]   # Blender's built-in font, created once on first text
    assert after == before
    assert not remove(plan.name)


def test_failure_leaves_scene_as_it_was(matmul_plan):
    good = matmul_plan()
    build(good)
    before = counts()
    cam = bpy.context.scene.camera
    bad = matmul_plan()
    bad.matrices[1].values = bad.matrices[1].values[:-1]     # wrong length: fails midway
    with pytest.raises(ValueError):
        build(bad)
    assert counts() == before
    assert bpy.context.scene.camera == cam
    assert find(good.name) is not None
    assert sorted(matrix_objects(find(good.name))) == ["L", "L@R", "R"]


def test_cancel_from_progress_rolls_back(matmul_plan):
    before = counts()
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        if fraction > 0.5:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        build(matmul_plan(), progress=progress)
    assert counts() == before
    assert seen[0] == 0.0 and seen == sorted(seen)


def test_progress_reaches_one(matmul_plan):
    seen = []
    build(matmul_plan(), progress=lambda f, m: seen.append((f, m)))
    assert seen[-1][0] == 1.0 and seen == sorted(seen, key=lambda x: x[0])


def test_bad_options_are_mm_errors(matmul_plan):
    with pytest.raises(MMError, match="look"):
        build(matmul_plan(), look="neon")
    with pytest.raises(MMError, match="view"):
        build(matmul_plan(), view="side")
    with pytest.raises(MMError, match="shape"):
        build(matmul_plan(), shape="torus")
    assert len(bpy.data.objects) == 0


def test_decor_is_few_objects(matmul_plan):
    plan = matmul_plan()
    coll = build(plan)
    names = {o.name for o in coll.objects}
    assert {f"{plan.name}:lines", f"{plan.name}:flow_guides", f"{plan.name}:camera"} <= names
    labels = [o for o in coll.objects if o.type == "FONT"]
    assert len(labels) == len(plan.labels)
    assert all(o.constraints[0].type == "COPY_ROTATION" for o in labels)
    lines = bpy.data.objects[f"{plan.name}:lines"]
    dg = bpy.context.evaluated_depsgraph_get()
    tubes = lines.evaluated_get(dg).data
    assert len(tubes.polygons) > 0      # edges became renderable tubes
    n_segments = sum(len(l.segments) for l in plan.lines)
    assert len(lines.data.edges) == n_segments


@pytest.mark.parametrize("view", list(cameramod.VIEWS))
@pytest.mark.parametrize("resolution", [(160, 90), (100, 100), (90, 160)])
def test_camera_frames_everything(view, resolution, matmul_plan):
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = resolution
    plan = matmul_plan(i=9, k=3, j=14)
    build(plan, view=view)
    cam = scene.camera
    pts = np.concatenate([cameramod.frame_points(plan),
                          cameramod.corners(plan.bounds_min, plan.bounds_max)])
    bpy.context.view_layer.update()
    uv = np.array([tuple(world_to_camera_view(scene, cam, Vector(p))) for p in pts])
    assert (uv[:, :2] >= -1e-6).all() and (uv[:, :2] <= 1 + 1e-6).all(), view
    assert (uv[:, 2] > cam.data.clip_start).all() and (uv[:, 2] < cam.data.clip_end).all()
    span = uv[:, :2].max(axis=0) - uv[:, :2].min(axis=0)
    assert span.max() > 0.8          # and it fills the frame


def test_refit_follows_the_aspect_ratio(matmul_plan):
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 160, 90
    plan = matmul_plan()
    build(plan)
    scene.render.resolution_x, scene.render.resolution_y = 90, 160
    assert cameramod.refit(scene.camera, scene)
    bpy.context.view_layer.update()
    uv = np.array([tuple(world_to_camera_view(scene, scene.camera, Vector(p)))
                   for p in cameramod.frame_points(plan)])
    assert (uv[:, :2] >= -1e-6).all() and (uv[:, :2] <= 1 + 1e-6).all()


def test_face_rotation_aligns_cells(two_colour_plan):
    plan = two_colour_plan()
    m = plan.matrices[0]
    m.col_axis = np.array([0.6, 0.8, 0.0], np.float32)
    m.normal = np.array([-0.8, 0.6, 0.0], np.float32)
    rx, ry, rz = cells.face_rotation(m)
    from mathutils import Euler
    mat = Euler((rx, ry, rz), "XYZ").to_matrix()
    assert np.allclose(np.array(mat.col[0]), m.col_axis, atol=1e-6)
    assert np.allclose(np.array(mat.col[2]), m.normal, atol=1e-6)


def test_unique_keys_are_checked(two_colour_plan):
    plan = two_colour_plan()
    plan.matrices[1].key = plan.matrices[0].key
    with pytest.raises(ValueError, match="unique"):
        build(plan)
    assert len(bpy.data.objects) == 0


def test_two_builds_coexist(matmul_plan, two_colour_plan):
    a = build(matmul_plan("a"))
    b = build(two_colour_plan("b"))
    assert find("a") == a and find("b") == b
    remove("a")
    assert find("b") == b and len(matrix_objects(b)) == 2
    assert buildmod.object_name("b", "red") in bpy.data.objects
