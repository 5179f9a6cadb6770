"""What the camera actually sees of a build's texts (names, shape labels, title): where each
one lands in the frame, how tall it is in pixels, whether geometry covers it and whether it
runs into another text. Geometric, from the evaluated scene: texts' own bounds projected by
the camera, rays from the camera to points spread over each text.

Blocking is decided two ways, because `Scene.ray_cast` does not see point clouds (sphere
cells, measured 5.0.1) and takes minutes on a million instanced cubes: mesh geometry
(arrows, lines, texts, and instanced cubes when asked) by `Scene.ray_cast`, and every cell
(spheres or cubes, static or in flight) by an exact vectorised ray-sphere / ray-box test
against the cells of the evaluated depsgraph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import bpy
import numpy as np
from mathutils import Vector

REFERENCE_RESOLUTION = (1280, 800)   # mm's screenshot size: the pixel-height rule's frame
MIN_NAME_PX = 10.0
MIN_SHAPE_PX = 7.0


@dataclass
class TextView:
    name: str
    kind: str                   # name | shape | title
    text: str
    corners_px: np.ndarray      # (4, 2) the text's bounds in pixels, y down
    height_px: float            # the letters' height on screen
    inside: bool                # all four corners in the frame
    blocked: list = field(default_factory=list)   # what covers some sample point
    overlaps: list = field(default_factory=list)  # texts whose bounds cross this one's

    def problems(self, min_px: float | None = None) -> list[str]:
        out = []
        if not self.inside:
            out.append("outside the frame")
        if self.blocked:
            out.append("covered by " + ", ".join(sorted(set(self.blocked))))
        if self.overlaps:
            out.append("overlaps " + ", ".join(sorted(set(self.overlaps))))
        if min_px is not None and self.height_px < min_px:
            out.append(f"{self.height_px:.1f} px tall (< {min_px:g})")
        return out


def texts(collection) -> list:
    """The build's text objects (labels and title)."""
    return [o for o in list(collection.all_objects) if o.type == "FONT" and "mm_label_kind" in o]


def text_corners(obj) -> np.ndarray:
    """(4, 3) world corners of the text's bounds in its own plane: bottom-left, bottom-right,
    top-right, top-left."""
    box = np.array([tuple(c) for c in obj.bound_box], dtype=np.float64)
    lo, hi = box.min(axis=0), box.max(axis=0)
    local = np.array([[lo[0], lo[1], 0], [hi[0], lo[1], 0], [hi[0], hi[1], 0],
                      [lo[0], hi[1], 0]], dtype=np.float64)
    m = np.array(obj.matrix_world)
    return local @ m[:3, :3].T + m[:3, 3]


def text_samples(obj, n: int = 3) -> np.ndarray:
    """n x n points spread over the text's bounds (inset a little from the corners)."""
    c = text_corners(obj)
    u = np.linspace(0.08, 0.92, n)
    uu, vv = np.meshgrid(u, u)
    uu, vv = uu.ravel()[:, None], vv.ravel()[:, None]
    return c[0] + uu * (c[1] - c[0]) + vv * (c[3] - c[0])


class Projector:
    """The scene camera's projection to pixels (y down) at a resolution."""

    def __init__(self, scene, resolution=None):
        cam = scene.camera
        w, h = resolution or (scene.render.resolution_x, scene.render.resolution_y)
        self.size = (int(w), int(h))
        r = scene.render
        old = (r.resolution_x, r.resolution_y, r.resolution_percentage)
        r.resolution_x, r.resolution_y, r.resolution_percentage = int(w), int(h), 100
        try:
            dg = bpy.context.evaluated_depsgraph_get()
            proj = cam.calc_matrix_camera(dg, x=int(w), y=int(h))
        finally:
            r.resolution_x, r.resolution_y, r.resolution_percentage = old
        self.matrix = np.array(proj) @ np.array(cam.matrix_world.inverted())
        self.origin = np.array(cam.matrix_world.translation, dtype=np.float64)
        self.ortho = cam.data.type == "ORTHO"
        self.forward = -np.array(cam.matrix_world.to_3x3().col[2], dtype=np.float64)

    def px(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        h = np.c_[p, np.ones(len(p))] @ self.matrix.T
        ndc = h[:, :2] / h[:, 3:4]
        w, hgt = self.size
        return np.stack([(ndc[:, 0] + 1) / 2 * w, (1 - ndc[:, 1]) / 2 * hgt], axis=1)

    def ray_origins(self, points) -> np.ndarray:
        """Where the ray to each point starts: the camera (perspective) or its image plane."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if not self.ortho:
            return np.broadcast_to(self.origin, p.shape).copy()
        depth = (p - self.origin) @ self.forward
        return p - depth[:, None] * self.forward


# --- cells as exact shapes -------------------------------------------------------------

@dataclass
class Cells:
    name: str
    centres: np.ndarray          # (N, 3) float32
    half: np.ndarray             # (N,) radius (spheres) or half edge (cubes)
    rotation: np.ndarray | None  # cubes: (3, 3) world-from-cell (one per object); None: spheres
    screen: tuple | None = None  # cached (centres in pixels, on-screen reach) for one camera


def _attr(data, name, width):
    attr = data.attributes.get(name)
    if attr is None:
        return None
    n = len(attr.data)
    out = np.empty(n * width, dtype=np.float32)
    key = "vector" if width == 3 else "value"
    attr.data.foreach_get(key, out)
    return out.reshape(n, width) if width > 1 else out


def cells_of(collection, depsgraph) -> list[Cells]:
    """Every drawn cell of the build's cell objects (static, highlighted or in flight) as the
    evaluated depsgraph has them now."""
    out = []
    for obj in list(collection.all_objects):
        if obj.type != "MESH" or "mm_cells" not in obj.modifiers or obj.hide_render:
            continue
        geometry = obj.evaluated_get(depsgraph).evaluated_geometry()
        world = np.array(obj.matrix_world)
        cloud = geometry.pointcloud
        if cloud is not None and len(cloud.points):
            pos = _attr(cloud, "position", 3)
            radius = _attr(cloud, "radius", 1)
            pos = pos @ world[:3, :3].T.astype(np.float32) + world[:3, 3].astype(np.float32)
            out.append(Cells(obj.name, pos, radius, None))
        inst = geometry.instances_pointcloud()
        if inst is not None and len(inst.points):
            n = len(inst.points)
            mats = np.empty(n * 16, dtype=np.float32)
            inst.attributes["instance_transform"].data.foreach_get("value", mats)
            mats = mats.reshape(n, 4, 4).transpose(0, 2, 1)   # stored column-major
            mats = world[None].astype(np.float32) @ mats
            scale = np.linalg.norm(mats[:, :3, 0], axis=1)
            rot = mats[0, :3, :3] / max(float(scale[0]), 1e-12)
            # the instanced cube is the unit cube: half edge = scale / 2
            out.append(Cells(obj.name, mats[:, :3, 3].copy(), scale / 2, rot))
    return out


def _blocked_by_cells(origin, point, cells: Cells, margin: float) -> bool:
    """Does the segment origin -> point pass through any of the cells (stopping `margin`
    before the point)?"""
    d = point - origin
    length = float(np.linalg.norm(d))
    if length <= margin:
        return False
    d = d / length
    tmax = length - margin
    c = cells.centres.astype(np.float64) - origin
    if cells.rotation is None:
        tca = c @ d
        r = cells.half.astype(np.float64)
        d2 = np.einsum("ij,ij->i", c, c) - tca * tca
        inside = d2 < r * r
        if not inside.any():
            return False
        thc = np.sqrt(np.maximum(r[inside] ** 2 - d2[inside], 0))
        t0 = tca[inside] - thc
        t1 = tca[inside] + thc
        return bool(((t1 > 0) & (t0 < tmax)).any())
    # cubes: slab test in the cells' own frame (one rotation per object)
    R = cells.rotation.astype(np.float64)
    dl = R.T @ d
    cl = c @ R          # centres in the cell frame, relative to the origin
    h = cells.half.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(np.abs(dl) > 1e-12, 1.0 / dl, np.inf)
        ta = (cl - h) * inv
        tb = (cl + h) * inv
    parallel = np.abs(dl) <= 1e-12
    tnear = np.where(parallel, -np.inf, np.minimum(ta, tb)).max(axis=1)
    tfar = np.where(parallel, np.inf, np.maximum(ta, tb)).min(axis=1)
    inside_parallel = (np.abs(cl) <= h) | ~parallel
    hit = inside_parallel.all(axis=1) & (tnear <= tfar) & (tfar > 0) & (tnear < tmax)
    return bool(hit.any())


def _on_screen_near(cells: Cells, proj: Projector, quad_px) -> Cells | None:
    """The cells whose projection comes within their own on-screen radius of the quad's
    bounding box (a cell on a ray to a point of the text covers that point's pixel)."""
    if not len(cells.centres):
        return None
    if cells.screen is None:
        c = cells.centres.astype(np.float64)
        px = proj.px(c)
        reach = cells.half * (1.0 if cells.rotation is None else 1.75)   # cube: half diagonal
        up = np.array(bpy.context.scene.camera.matrix_world.to_3x3().col[1])
        cells.screen = (px, np.linalg.norm(proj.px(c + up * reach[:, None]) - px, axis=1) + 1.0)
    lo, hi = quad_px.min(axis=0), quad_px.max(axis=0)
    px, r = cells.screen
    keep = ((px[:, 0] >= lo[0] - r) & (px[:, 0] <= hi[0] + r) & (px[:, 1] >= lo[1] - r)
            & (px[:, 1] <= hi[1] + r))
    if not keep.any():
        return None
    return Cells(cells.name, cells.centres[keep], cells.half[keep], cells.rotation)


def _ray_cast_blocker(scene, depsgraph, origin, point, own, margin: float):
    """The name of the first mesh object (not `own`) between origin and point, or None."""
    d = point - origin
    length = float(np.linalg.norm(d))
    if length <= margin:
        return None
    d = d / length
    start = origin.copy()
    remaining = length - margin
    for _ in range(8):   # step past the text itself if the ray grazes its letters
        hit, loc, _n, _i, obj, _m = scene.ray_cast(depsgraph, Vector(start), Vector(d),
                                                    distance=remaining)
        if not hit:
            return None
        if obj is None or obj.original.name != own:
            return obj.original.name if obj is not None else "?"
        loc = np.array(loc)
        step = float(np.dot(loc - start, d)) + 1e-4 * length
        start = start + d * step
        remaining -= step
        if remaining <= 0:
            return None
    return None


# --- overlap of two convex quads on screen -----------------------------------------------

def _quads_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two convex polygons (vertices in order)."""
    for poly in (a, b):
        for k in range(len(poly)):
            e = poly[(k + 1) % len(poly)] - poly[k]
            axis = np.array([-e[1], e[0]])
            if not np.any(axis):
                continue
            pa, pb = a @ axis, b @ axis
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


def quad_height(q) -> float:
    """Height of a projected text quad (bottom-left, bottom-right, top-right, top-left) across
    its baseline: a text seen edge-on is flat however long its sides look."""
    base = q[1] - q[0]
    rise = (q[2] + q[3]) / 2 - (q[0] + q[1]) / 2
    n = float(np.linalg.norm(base))
    if n < 1e-9:
        return 0.0
    return abs(float(base[0] * rise[1] - base[1] * rise[0])) / n


def _height_px(obj, proj: Projector) -> float:
    """On-screen height of the text across its baseline."""
    return quad_height(proj.px(text_corners(obj)))


LENS_ROLES = ("lens_numbers", "lens_glyphs")


def inspect(scene, collection, *, resolution=None, samples: int = 3,
            ray_cast_cells: bool = False) -> list[TextView]:
    """How each text of `collection` reads from the scene camera at `resolution` (default the
    scene's). Mesh geometry is tested by Scene.ray_cast, cells exactly by numpy; with
    `ray_cast_cells` instanced cubes are also left to ray_cast (small scenes only)."""
    proj = Projector(scene, resolution)
    dg = bpy.context.evaluated_depsgraph_get()
    w, h = proj.size
    objs = texts(collection)
    cells = cells_of(collection, dg)
    hidden = []
    # The lens is a magnifier the user parks over what they want to read: what its loupe
    # covers it shows enlarged, so it is no cover here.
    for o in list(collection.all_objects):
        if o.get("mm_role") in LENS_ROLES and not o.hide_viewport:
            o.hide_viewport = True
            hidden.append(o)
    if not ray_cast_cells:   # ray_cast would walk every instanced cube: minutes at 1M
        for o in list(collection.all_objects):
            if o.type == "MESH" and "mm_cells" in o.modifiers and not o.hide_viewport:
                o.hide_viewport = True
                hidden.append(o)
    if hidden:
        dg = bpy.context.evaluated_depsgraph_get()
        dg.update()
    views = []
    try:
        scale = max(float(np.linalg.norm(np.ptp(text_corners(o), axis=0))) for o in objs) \
            if objs else 1.0
        for obj in objs:
            corners = text_corners(obj)
            cpx = proj.px(corners)
            inside = bool(((cpx[:, 0] >= 0) & (cpx[:, 0] <= w) & (cpx[:, 1] >= 0)
                           & (cpx[:, 1] <= h)).all())
            view = TextView(obj.name, obj["mm_label_kind"], obj.data.body, cpx,
                            _height_px(obj, proj), inside)
            pts = text_samples(obj, samples)
            origins = proj.ray_origins(pts)
            margin = 1e-3 * scale
            # only cells whose footprint on screen meets the text can lie on a ray to it
            near = [_on_screen_near(c, proj, cpx) for c in cells]
            for o, p in zip(origins, pts):
                blocker = _ray_cast_blocker(scene, dg, o, p, obj.name, margin)
                if blocker is not None:
                    view.blocked.append(blocker)
                    continue
                for c in near:
                    if c is not None and _blocked_by_cells(o, p, c, margin):
                        view.blocked.append(c.name)
                        break
            views.append(view)
    finally:
        for o in hidden:
            o.hide_viewport = False
    for a in range(len(views)):
        for b in range(a + 1, len(views)):
            if _quads_overlap(views[a].corners_px, views[b].corners_px):
                views[a].overlaps.append(views[b].name)
                views[b].overlaps.append(views[a].name)
    return views


def min_height(kind: str) -> float | None:
    """The pixel-height rule at REFERENCE_RESOLUTION: names and titles 10 px, shape labels 7."""
    return MIN_SHAPE_PX if kind == "shape" else MIN_NAME_PX


def problems(views: list[TextView], *, check_height: bool) -> dict[str, list[str]]:
    out = {}
    for v in views:
        p = v.problems(min_height(v.kind) if check_height else None)
        if p:
            out[f"{v.name} {v.text!r}"] = p
    return out


# --- dense faces: cells sized for their footprint on screen ------------------------------

SHARP_FILTER_PX = 0.8      # Cycles' pixel filter for scenes of small cells (default 1.5)
RESOLVED_PX = 4.0          # cells this far apart on screen keep the plan's sizes
SIGNS_PX = 1.5             # below this pitch neighbouring signs mix within a pixel
FILL = 0.95                # a small cell's share of its pitch once enlarged


@dataclass
class Footprint:
    name: str
    pitch_px: float            # distance between neighbouring cells on screen
    mixed: bool                # the face holds both signs
    cell_scale: float = 1.0    # what fit_cells set the modifier's Cell Scale to


def footprints(scene, collection, resolution=None) -> list[Footprint]:
    """Each matrix's cell pitch on screen, measured at its centre cell."""
    proj = Projector(scene, resolution)
    out = []
    for obj in list(collection.all_objects):
        if obj.type != "MESH" or "mm_rows" not in obj or "mm_cells" not in obj.modifiers:
            continue
        rows, cols = int(obj["mm_rows"]), int(obj["mm_cols"])
        n = len(obj.data.vertices)
        if n != rows * cols or n == 0:
            continue
        c = (rows // 2) * cols + cols // 2
        idx = [c, c + 1 if cols > 1 else c, c + cols if rows > 1 else c]
        co = np.array([obj.data.vertices[i].co[:] for i in idx], dtype=np.float64)
        p = proj.px(co @ np.array(obj.matrix_world)[:3, :3].T + np.array(obj.matrix_world)[:3, 3])
        steps = [np.linalg.norm(p[k] - p[0]) for k, size in ((1, cols), (2, rows)) if size > 1]
        pitch = float(min(steps)) if steps else math.inf
        values = np.empty(n, dtype=np.float32)
        obj.data.attributes["value"].data.foreach_get("value", values)
        out.append(Footprint(obj.name, pitch, bool((values < 0).any() and (values > 0).any())))
    return out


def fit_cells(scene, collection, resolution=None) -> list[str]:
    """Size cells for their footprint at `resolution` so faces of mixed signs keep them:
    faces whose cells are under RESOLVED_PX apart get cells filling FILL of their pitch
    (the background between small cells greys the colours), and a scene with such faces a
    sharper pixel filter. Returns a warning per face whose signs must still mix, with the
    resolution that would tell them apart."""
    w, h = resolution or (scene.render.resolution_x, scene.render.resolution_y)
    warnings = []
    smallest = math.inf
    for fp in footprints(scene, collection, (w, h)):
        obj = bpy.data.objects[fp.name]
        mod = obj.modifiers["mm_cells"]
        sizes = np.empty(len(obj.data.vertices), dtype=np.float32)
        obj.data.attributes["size"].data.foreach_get("value", sizes)
        biggest = float(sizes.max()) if len(sizes) else 0.0
        scale = 1.0
        if fp.pitch_px < RESOLVED_PX and biggest > 0:
            scale = max(1.0, FILL / biggest)
        mod["Socket_2"] = scale          # Cell Scale
        fp.cell_scale = scale
        if fp.mixed:
            smallest = min(smallest, fp.pitch_px)
            if fp.pitch_px < SIGNS_PX:
                f = SIGNS_PX / max(fp.pitch_px, 1e-6)
                warnings.append(
                    f"{obj.get('mm_name', fp.name)}: cells are {fp.pitch_px:.2f} px apart at "
                    f"{w}x{h}, so its signs mix; render at {math.ceil(w * f)}x{math.ceil(h * f)} "
                    "or more to tell them apart")
    if hasattr(scene, "cycles"):
        scene.cycles.filter_width = SHARP_FILTER_PX if smallest < RESOLVED_PX else 1.5
    return warnings
