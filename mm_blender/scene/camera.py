"""Camera framing and lights. The camera looks from one of the named views and is placed so
everything drawn (the hull of `frame_points`, which holds the plan's bounds' contents) is
inside the frame for the render's aspect ratio. An optional title (the expression, as mm
shows it) is a child of the camera, kept at the top of the frame by every refit.

Views (direction from the target to the camera, Blender coordinates, Z up, front = -Y):
    mm     (-1, -1, 1)     mm's default camera (perspective, mm's 45 degree field of view);
                           a preset's look.camera (the article's own viewpoint) replaces it
    front  (0, -1, 0)      the root's result face, i downward (orthographic)
    top    (0, 0, 1)       from above, k running up the image (orthographic)
    iso    (-1, -1, 1)     true isometric (orthographic)
"""
from __future__ import annotations

import math
import re

import bpy
import numpy as np
from mathutils import Matrix

from ..errors import MMError

VIEWS = {
    "mm": ((-1.0, -1.0, 1.0), "PERSP"),
    "front": ((0.0, -1.0, 0.0), "ORTHO"),
    "top": ((0.0, 0.0, 1.0), "ORTHO"),
    "iso": ((-1.0, -1.0, 1.0), "ORTHO"),
}
MM_VERTICAL_FOV = math.radians(45.0)  # mm's three.js camera: 45 degrees vertical (landscape)
MARGIN = 0.05                          # fraction of the frame left free on each side


def check_view(view: str) -> str:
    if view not in VIEWS:
        raise MMError(f"unknown view {view!r}: expected one of {', '.join(VIEWS)}")
    return view


def field_of_view(aspect: float) -> float:
    """mm's field of view as Blender's angle across the frame's longer side."""
    if aspect >= 1:
        return 2 * math.atan(math.tan(MM_VERTICAL_FOV / 2) * aspect)
    return min(math.radians(120.0), MM_VERTICAL_FOV / aspect)


def view_basis(view: str, direction=None) -> np.ndarray:
    """Rows: camera right, up and backward (from the target towards the camera). A preset's
    own `direction` (look.camera) replaces the "mm" view's default."""
    d = np.asarray(VIEWS[check_view(view)][0], dtype=np.float64)
    if view == "mm" and direction is not None and len(direction) == 3 \
            and np.linalg.norm(direction) > 0:
        d = np.asarray(direction, dtype=np.float64)
    z = d / np.linalg.norm(d)
    up = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.999 else np.array([0.0, 1.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def corners(bounds_min, bounds_max) -> np.ndarray:
    lo = np.asarray(bounds_min, dtype=np.float64)
    hi = np.asarray(bounds_max, dtype=np.float64)
    bits = np.array([[(c >> a) & 1 for a in range(3)] for c in range(8)], dtype=np.float64)
    return lo + bits * (hi - lo)


def _padded(points, pad) -> np.ndarray:
    """Each point as the 8 corners of a cube of half-size pad around it."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pad = np.broadcast_to(np.asarray(pad, dtype=np.float64), (len(points),))
    signs = corners((-1, -1, -1), (1, 1, 1))
    return (points[:, None, :] + signs[None] * pad[:, None, None]).reshape(-1, 3)


MAX_LINE_POINTS = 4096


def _sphere_directions(n: int = 256) -> np.ndarray:
    """n directions spread evenly over the sphere (Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    r = np.sqrt(1 - z * z)
    phi = np.pi * (1 + 5 ** 0.5) * k
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def extreme_points(points: np.ndarray) -> np.ndarray:
    """A few hundred of the points whose hull is close to all the points' hull: the farthest
    point along each of 256 directions. (A bounding box's corners would add empty space for
    L-shaped layouts and push the content off-centre.)"""
    idx = np.unique(np.argmax(points @ _sphere_directions().T, axis=0))
    return points[idx]


def frame_points(plan, labels: bool = True) -> np.ndarray:
    """Points whose hull holds everything drawn: each matrix's corner cells (padded by the
    largest cell), triangle vertices, line ends and label boxes. Framing these instead of
    the bounding box's corners keeps sparse layouts (crosses, chains) large in the frame;
    anything inside the bounds is still inside their hull, so nothing is clipped.
    labels=False leaves out the labels' rough boxes (the build frames the placed texts)."""
    parts = []
    for m in plan.matrices:
        n = m.rows * m.cols
        if n == 0:
            continue
        idx = np.unique([0, m.cols - 1, n - m.cols, n - 1])
        sizes = np.asarray(m.sizes, dtype=np.float64)
        half = float(np.nanmax(sizes)) / 2 if len(sizes) else 0.5
        parts.append(_padded(np.asarray(m.positions)[idx], max(half, 0.5)))
    for t in plan.triangles:
        parts.append(np.asarray(t.vertices, dtype=np.float64).reshape(-1, 3))
    for line in plan.lines:
        ends = np.asarray(line.segments, dtype=np.float64).reshape(-1, 3)
        if len(ends) > MAX_LINE_POINTS:
            ends = extreme_points(ends)
        parts.append(_padded(ends, line.thickness))
    for label in plan.labels if labels else ():
        if label.face_axes:   # names lie on their faces, inside what the cells already span
            continue
        # letters are about 0.6 em wide, and the font size is the height / 0.72
        half = 0.5 * max(float(label.size), 0.85 * float(label.size) * len(label.text))
        parts.append(_padded(np.asarray(label.position), half))
    if not parts:
        return corners(plan.bounds_min, plan.bounds_max)
    pts = np.concatenate(parts)
    return pts[np.isfinite(pts).all(axis=1)] if np.isfinite(pts).any() else \
        corners(plan.bounds_min, plan.bounds_max)


def _half_tans(aspect: float, angle: float) -> tuple[float, float]:
    t = math.tan(angle / 2)
    return (t, t / aspect) if aspect >= 1 else (t * aspect, t)


def fit(points, *, view: str = "mm", aspect: float = 16 / 9, angle: float | None = None,
        margin: float = MARGIN, direction=None, top: float = 0.0) -> dict:
    """Where the camera goes so every point is in frame: location, rotation matrix (3x3),
    ortho scale or lens shift, clipping.

    Perspective: the distance is the smallest for which all points fit once the frame is
    centred with lens shift (bisection over a few hundred points: it costs nothing).
    top: fraction of the frame's height kept free at the top (for the title)."""
    basis = view_basis(view, direction)
    angle = field_of_view(aspect) if angle is None else angle
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    target = (pts.min(axis=0) + pts.max(axis=0)) / 2
    local = (pts - target) @ basis.T                 # corner coords in the camera's axes
    px, py, pz = local[:, 0], local[:, 1], local[:, 2]
    radius = float(np.linalg.norm(local, axis=1).max()) or 1.0
    fill = 1.0 - 2 * margin
    kind = VIEWS[view][1]
    if kind == "ORTHO":
        w = px.max() - px.min()
        h = py.max() - py.min()
        target = (target + basis[0] * (px.max() + px.min()) / 2
                  + basis[1] * (py.max() + py.min()) / 2)
        hv = h / max(1.0 - top, 1e-3)
        scale = max(w, hv * aspect) if aspect >= 1 else max(w / aspect, hv)
        scale = max(scale / fill, 1e-3)
        frame_h = scale / aspect if aspect >= 1 else scale
        target = target + basis[1] * top * frame_h / 2
        distance = 2 * radius + 1.0
        shift = (0.0, 0.0)
    else:
        tx, ty = _half_tans(aspect, angle)

        def extents(dist):
            depth = dist - pz
            u = px / (depth * tx)
            v = py / (depth * ty)
            return u, v

        def fits(dist):
            u, v = extents(dist)
            return (u.max() - u.min()) / 2 <= fill and (v.max() - v.min()) / 2 <= fill - top

        near = pz.max() + 1e-3 * radius
        # Far enough to fit unshifted: |p_x| <= tan * fill * depth on both axes.
        far = float(max((np.abs(px) / (tx * fill) + pz).max(),
                        (np.abs(py) / (ty * fill) + pz).max()))
        far = max(far, near + 1e-3)
        for _ in range(60):
            mid = (near + far) / 2
            if fits(mid):
                far = mid
            else:
                near = mid
        distance = far
        u, v = extents(distance)
        # Blender's shift is in units of the frame's longer side; u, v span -1..1 per half.
        longer = max(aspect, 1.0)
        shift_x = (u.max() + u.min()) / 2 * 0.5 * (aspect / longer)
        shift_y = ((v.max() + v.min()) / 2 + top) * 0.5 * (1.0 / longer)
        shift = (float(shift_x), float(shift_y))
        scale = None
    location = target + basis[2] * distance
    nearest = distance - pz.max()
    return {
        "type": kind,
        "location": tuple(float(c) for c in location),
        "rotation": basis.T,                        # columns: camera X, Y, Z in world
        "ortho_scale": scale,
        "shift": shift,
        "angle": angle,
        "clip_start": float(max(min(0.1, nearest * 0.5), 1e-4)),
        "clip_end": float((distance - pz.min()) * 1.5 + 10.0),
        "target": tuple(float(c) for c in target),
    }


def apply_fit(cam_obj, f: dict) -> None:
    cam = cam_obj.data
    cam.type = f["type"]
    cam.sensor_fit = "AUTO"
    if f["type"] == "ORTHO":
        cam.ortho_scale = f["ortho_scale"]
    else:
        cam.angle = f["angle"]
    cam.shift_x, cam.shift_y = f["shift"]
    cam.clip_start = f["clip_start"]
    cam.clip_end = f["clip_end"]
    rot = Matrix(np.asarray(f["rotation"]).tolist()).to_4x4()
    rot.translation = f["location"]
    cam_obj.matrix_world = rot


def render_aspect(scene) -> float:
    r = scene.render
    return (r.resolution_x * r.pixel_aspect_x) / max(r.resolution_y * r.pixel_aspect_y, 1e-9)


def camera_object(name: str, points, *, view: str, scene, collection, direction=None):
    """A camera framing `points` (see `frame_points`) for the scene's current aspect ratio.
    The view and points are kept as custom properties (`mm_view`, `mm_frame_points`) so
    `refit` can reframe for another resolution or view."""
    cam = bpy.data.cameras.new(name)
    obj = bpy.data.objects.new(name, cam)
    collection.objects.link(obj)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    obj["mm_view"] = view
    obj["mm_frame_points"] = points.ravel().tolist()
    if direction is not None and len(direction) == 3:
        obj["mm_direction"] = [float(c) for c in direction]
    apply_fit(obj, fit(points, view=view, aspect=render_aspect(scene), direction=direction))
    return obj


TITLE_BAND = 0.09     # of the frame's height, kept free at the top for the title
TITLE_HEIGHT = 0.03   # the title's letters, of the frame's height (24 px at 800)


def title_of(cam_obj):
    for child in cam_obj.children:
        if child.get("mm_label_kind") == "title":
            return child
    return None


def place_title(cam_obj, scene) -> None:
    """Put the camera's title (a child text) at the top centre of its frame, in front of
    everything, sized to the frame: it stays in the frame for any aspect ratio."""
    title = title_of(cam_obj)
    if title is None:
        return
    cam = cam_obj.data
    aspect = render_aspect(scene)
    points = np.asarray(cam_obj["mm_frame_points"], dtype=np.float64).reshape(-1, 3)
    m = np.array(cam_obj.matrix_world)
    local = (points - m[:3, 3]) @ m[:3, :3]
    nearest = float((-local[:, 2]).min())
    if cam.type == "ORTHO":
        longer = cam.ortho_scale
        d = max(cam.clip_start * 2, nearest * 0.5)
    else:
        d = max(cam.clip_start * 2, nearest * 0.5)
        longer = 2 * d * math.tan(cam.angle / 2)
    width, height = (longer, longer / aspect) if aspect >= 1 else (longer * aspect, longer)
    cx, cy = cam.shift_x * longer, cam.shift_y * longer
    size = TITLE_HEIGHT * height / 0.72
    box = np.array([tuple(c) for c in title.bound_box], dtype=np.float64)
    w_unit = (box[:, 0].max() - box[:, 0].min()) / max(title.data.size, 1e-9)
    size = min(size, 0.9 * width / max(w_unit, 1e-9))
    title.data.size = size
    title.matrix_parent_inverse.identity()
    title.location = (cx, cy + height / 2 - TITLE_BAND * height / 2, -d)
    title.rotation_euler = (0.0, 0.0, 0.0)


def title_object(name: str, text: str, cam_obj, scene, *, material, collection):
    """The expression at the top of the view, as mm shows it: a child of the camera."""
    curve = bpy.data.curves.new(name, "FONT")
    curve.body = " ".join(re.sub(r"\s*([@=])\s*", r" \1 ", text).split())   # "A @ B", as mm
    curve.align_x = "CENTER"
    curve.align_y = "CENTER"
    curve.size = 1.0
    curve.materials.append(material)
    obj = bpy.data.objects.new(name, curve)
    obj.visible_shadow = False
    obj["mm_label_kind"] = "title"
    collection.objects.link(obj)
    obj.parent = cam_obj
    cam_obj["mm_title_band"] = TITLE_BAND
    refit(cam_obj, scene)
    bpy.context.view_layer.update()
    place_title(cam_obj, scene)
    return obj


def refit(cam_obj, scene, view: str | None = None) -> bool:
    """Reframe an mm camera for the scene's aspect ratio (or another view). False if the
    camera wasn't made by `camera_object`."""
    if cam_obj is None or "mm_frame_points" not in cam_obj:
        return False
    view = check_view(view or cam_obj.get("mm_view", "mm"))
    cam_obj["mm_view"] = view
    points = np.asarray(cam_obj["mm_frame_points"], dtype=np.float64).reshape(-1, 3)
    direction = list(cam_obj["mm_direction"]) if "mm_direction" in cam_obj else None
    apply_fit(cam_obj, fit(points, view=view, aspect=render_aspect(scene), direction=direction,
                           top=float(cam_obj.get("mm_title_band", 0.0))))
    place_title(cam_obj, scene)
    return True


def lights(name: str, look: str, bounds_min, bounds_max, *, collection) -> list:
    """A sun from the upper left front. Dark: weak, just enough to shade the cells'
    faces apart (emission carries the colour); paper: the key light over the world's soft
    ambient, balanced so a lit face shows about its plan colour (not clipped pale)."""
    light = bpy.data.lights.new(name, "SUN")
    light.energy = 0.35 if look == "dark" else 0.7
    light.angle = math.radians(10.0)
    obj = bpy.data.objects.new(name, light)
    direction = np.array([-0.45, -0.75, 1.0])      # towards the light
    z = direction / np.linalg.norm(direction)
    x = np.cross((0.0, 0.0, 1.0), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = Matrix(np.stack([x, y, z], axis=1).tolist()).to_4x4()
    m.translation = [float(v) for v in np.asarray(bounds_max, float)]
    obj.matrix_world = m
    collection.objects.link(obj)
    return [obj]
