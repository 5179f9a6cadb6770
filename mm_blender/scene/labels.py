"""Where each label goes once the camera is known, so every text reads from it: shape labels
turned along their face's outer edge on screen and set beside it (as mm draws them), names
lying on their face and scaled with it, moved within the face or turned to the camera when
something would cover them. Every text is at least MIN_NAME_PX / MIN_SHAPE_PX tall at mm's
screenshot size, stays clear of the others, and is brought towards the camera (keeping its
place and size on screen) when drawn geometry lies between it and the camera.

Coverage is judged on screen against every drawn cell's footprint, the flow guides and the
cube outlines (numpy over all cells at once: no per-cell Python).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core import sweep as sweepmod

# Taller than the readability rule (scene/readability.py) so a reframe for another aspect
# ratio, which makes the scene a little smaller, keeps them above it.
NAME_PX = 13.0
SHAPE_PX = 9.5
REFERENCE = (1280, 800)   # mm's screenshot size: the frame the pixel sizes hold for
OTHER_FRAME = (800, 1000)  # a portrait frame the placement is also checked in
CLEARANCE = 1.0        # scene units a text keeps in front of what lies behind it on screen
FACE_LIFT = 0.6        # a name's height above its face (cells reach at most 0.475)


@dataclass
class Placed:
    key: str
    matrix: np.ndarray     # (3, 3) columns: text right, up, normal (towards the camera)
    position: np.ndarray   # (3,) centre of the text's bounds
    scale: float           # the font size
    billboard: bool        # faces the camera (rotated about the view axis by `roll`)
    roll: float = 0.0
    quad: np.ndarray | None = None   # (4, 2) on-screen corners at the reference resolution
    corners: np.ndarray | None = None   # (4, 3) world corners of the text's bounds


class Screen:
    """A camera's projection to pixels (y down) from its 4x4 projection @ view matrix."""

    def __init__(self, matrix, origin, basis, size, ortho: bool):
        self.m = np.asarray(matrix, dtype=np.float64)
        self.origin = np.asarray(origin, dtype=np.float64)
        self.right, self.up, self.back = (np.asarray(v, dtype=np.float64) for v in basis)
        self.size = size
        self.ortho = ortho

    def px(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 3)
        h = p @ self.m[:3, :3].T + self.m[:3, 3]
        w = p @ self.m[3, :3] + self.m[3, 3]
        x = h[:, 0] / w
        y = h[:, 1] / w
        return np.stack([(x + 1) / 2 * self.size[0], (1 - y) / 2 * self.size[1]], axis=1)

    def depth(self, p) -> np.ndarray:
        return -(np.asarray(p, dtype=np.float64).reshape(-1, 3) - self.origin) @ self.back

    def px_per_unit(self, p) -> np.ndarray:
        """Pixels per scene unit of a length perpendicular to the view at each point."""
        p = np.asarray(p, dtype=np.float64).reshape(-1, 3)
        return np.linalg.norm(self.px(p + self.up) - self.px(p), axis=1)


@dataclass
class Footprints:
    """What can cover a text: points with an on-screen radius and a depth (cells, samples of
    outlines), each with the matrix it belongs to ('' for lines), and flow-guide triangles."""
    px: np.ndarray
    radius: np.ndarray
    depth: np.ndarray
    owner: np.ndarray          # int index into `owners`
    owners: list
    triangles: np.ndarray      # (T, 3, 2) on screen
    triangle_depth: np.ndarray


def footprints(plan, screen: Screen, line_floor: float = 0.0,
               line_weight: float = 1.0) -> Footprints:
    pts, rad, owner, owners = [], [], [], []
    for n, m in enumerate(plan.matrices):
        sizes = np.asarray(m.sizes, dtype=np.float32)
        keep = sizes > 0
        pts.append(np.asarray(m.positions, dtype=np.float32)[keep])
        rad.append(sizes[keep] * 0.71)       # the cube's half diagonal in its face
        owner.append(np.full(int(keep.sum()), n, np.int32))
        owners.append(m.key)
    owners.append("")
    # A sweep's products pass through its whole cube: a coarse grid of the cube's interior
    # points stands for every slice in flight, so no frame of the sweep covers a text.
    for cube in plan.cubes:
        if cube.alg in sweepmod.ANIMATED:
            p, r = _swept_products(cube)
            pts.append(p)
            rad.append(r)
            owner.append(np.full(len(p), len(owners) - 1, np.int32))
    keys = {m.key: n for n, m in enumerate(plan.matrices)}
    for line in plan.lines:
        s = np.asarray(line.segments, dtype=np.float64).reshape(-1, 2, 3)
        radius = line_weight * max(line.thickness, line_floor) / 2
        step = max(1.0, radius)
        steps = np.maximum(2, np.ceil(np.linalg.norm(s[:, 1] - s[:, 0], axis=1) / step)
                           ).astype(int)
        t = np.concatenate([np.linspace(0, 1, k) for k in steps]) if len(s) else np.zeros(0)
        seg = np.repeat(np.arange(len(s)), steps)
        p = s[seg, 0] + t[:, None] * (s[seg, 1] - s[seg, 0])
        # a row guide belongs to its matrix (under that matrix's name); outlines to none
        seg_owner = np.full(len(s), len(owners) - 1, np.int32)
        start = 0
        for key, count in line.owners:
            seg_owner[start:start + count] = keys.get(key, len(owners) - 1)
            start += count
        pts.append(p.astype(np.float32))
        rad.append(np.full(len(p), radius, np.float32))
        owner.append(seg_owner[seg])
    allp = np.concatenate(pts) if pts else np.zeros((0, 3), np.float32)
    r = np.concatenate(rad) if rad else np.zeros(0, np.float32)
    tris = [np.asarray(t.vertices, dtype=np.float64).reshape(-1, 3, 3) for t in plan.triangles]
    tris = np.concatenate(tris) if tris else np.zeros((0, 3, 3))
    return Footprints(
        px=screen.px(allp).astype(np.float32),
        # 2 px of slack: a reframe for another aspect ratio moves things a little
        radius=(r * screen.px_per_unit(allp) + 2.0).astype(np.float32) if len(allp) else r,
        depth=screen.depth(allp).astype(np.float32),
        owner=np.concatenate(owner) if owner else np.zeros(0, np.int32), owners=owners,
        triangles=screen.px(tris.reshape(-1, 3)).reshape(-1, 3, 2),
        triangle_depth=screen.depth(tris.reshape(-1, 3)).reshape(-1, 3).min(axis=1)
        if len(tris) else np.zeros(0))


SWEPT_SAMPLES = 12   # per axis of a swept cube


def _swept_products(cube) -> tuple[np.ndarray, np.ndarray]:
    """(points, radii) covering every product position of a cube: a grid of at most
    SWEPT_SAMPLES per axis, each sample as wide as the gap to its neighbours."""
    n = [max(1, int(c)) for c in (cube.rows, cube.cols, cube.depth)]
    idx = [np.unique(np.linspace(0, c - 1, min(c, SWEPT_SAMPLES)).round().astype(int))
           for c in n]
    i, j, k = np.meshgrid(*idx, indexing="ij")
    points = cube.interior_point(i.ravel(), j.ravel(), k.ravel()).astype(np.float32)
    steps = [max(1.0, (c - 1) / max(len(x) - 1, 1)) for c, x in zip(n, idx)]
    reach = 0.5 * float(np.linalg.norm(steps[0] * np.asarray(cube.di)
                                       + steps[1] * np.asarray(cube.dj)
                                       + steps[2] * np.asarray(cube.dk)))
    return points, np.full(len(points), reach, np.float32)


def _inside(points, radius, quad) -> np.ndarray:
    """Points within `radius` of a convex quad (screen)."""
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    r = radius
    near = ((points[:, 0] >= lo[0] - r) & (points[:, 0] <= hi[0] + r)
            & (points[:, 1] >= lo[1] - r) & (points[:, 1] <= hi[1] + r))
    idx = np.flatnonzero(near)
    if not len(idx):
        return idx
    p = points[idx].astype(np.float64)
    rr = np.asarray(r, dtype=np.float64)[idx] if np.ndim(r) else r
    centre = quad.mean(axis=0)
    ok = np.ones(len(idx), bool)
    for k in range(len(quad)):
        a, b = quad[k], quad[(k + 1) % len(quad)]
        e = b - a
        n = np.array([e[1], -e[0]]) / (np.linalg.norm(e) or 1.0)
        if np.dot(centre - a, n) < 0:
            n = -n
        ok &= (p - a) @ n >= -rr
    return idx[ok]


def polygons_overlap(a, b) -> bool:
    """Separating-axis test of two convex polygons."""
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


def nearest_under(fp: Footprints, quad, exclude: str = "") -> float:
    """Depth of the nearest geometry whose footprint meets the quad (inf: none)."""
    idx = _inside(fp.px, fp.radius, quad)
    if exclude and len(idx):
        own = fp.owners.index(exclude) if exclude in fp.owners else -1
        idx = idx[fp.owner[idx] != own]
    d = float(fp.depth[idx].min()) if len(idx) else math.inf
    for tri, td in zip(fp.triangles, fp.triangle_depth):
        if td < d and polygons_overlap(tri, quad):
            d = float(td)
    return d


def quad_height(q) -> float:
    """Height of a text quad across its baseline (as scene/readability.py measures it)."""
    base = q[1] - q[0]
    rise = (q[2] + q[3]) / 2 - (q[0] + q[1]) / 2
    n = float(np.linalg.norm(base))
    return abs(float(base[0] * rise[1] - base[1] * rise[0])) / n if n > 1e-9 else 0.0


def _rect(centre, half_w, half_h, angle) -> np.ndarray:
    """Screen corners (y down) of a rectangle rotated by `angle` (radians, counterclockwise
    as seen on screen)."""
    c, s = math.cos(angle), math.sin(angle)
    ux = np.array([c, -s])        # text's right on screen (y down)
    uy = np.array([-s, -c])       # text's up on screen
    return np.array([centre - ux * half_w - uy * half_h, centre + ux * half_w - uy * half_h,
                     centre + ux * half_w + uy * half_h, centre - ux * half_w + uy * half_h])


def _in_frame(quad, size, pad=2.0) -> bool:
    return bool((quad[:, 0] >= pad).all() and (quad[:, 0] <= size[0] - pad).all()
                and (quad[:, 1] >= pad).all() and (quad[:, 1] <= size[1] - pad).all())


SPACING_PX = 3.0   # texts keep this far apart, so a reframe doesn't make them touch


def _grown(quad, px: float = SPACING_PX) -> np.ndarray:
    c = quad.mean(axis=0)
    d = quad - c
    n = np.linalg.norm(d, axis=1, keepdims=True)
    return quad + d / np.maximum(n, 1e-9) * px * 1.42


def _clear(quad, placed, screen) -> bool:
    return _in_frame(quad, screen.size) and not any(
        polygons_overlap(_grown(quad), p.quad) for p in placed)


def _slide(screen: Screen, position, depth_now, nearest):
    """Bring a camera-facing text towards the camera until it is CLEARANCE in front of
    `nearest`; its place and size on screen stay. Returns (position, scale factor)."""
    target = nearest - CLEARANCE
    if not math.isfinite(nearest) or depth_now <= target:
        return position, 1.0
    target = max(target, 0.05 * depth_now)
    if screen.ortho:
        return position + screen.back * (depth_now - target), 1.0
    f = target / depth_now
    return screen.origin + (position - screen.origin) * f, f


def _billboard_matrix(screen: Screen, roll: float) -> np.ndarray:
    c, s = math.cos(roll), math.sin(roll)
    right = c * screen.right + s * screen.up
    up = -s * screen.right + c * screen.up
    return np.stack([right, up, screen.back], axis=1)


def place_shape(label, box, fp: Footprints, screen: Screen, placed, others=()) -> Placed:
    """A shape label turned along its edge on screen and set beside it, on the outer side."""
    p0, p1, out = (np.asarray(v, dtype=np.float64) for v in label.edge)
    s0, s1 = screen.px(np.stack([p0, p1]))
    e = s1 - s0
    if np.linalg.norm(e) < 1e-6:
        e = np.array([1.0, 0.0])
    roll = math.atan2(-e[1], e[0])
    if roll > math.pi / 2 + 1e-3:
        roll -= math.pi
    elif roll < -math.pi / 2 - 1e-3:
        roll += math.pi
    best = None
    for t in (0.5, 0.35, 0.65, 0.2, 0.8):
        mid = p0 + t * (p1 - p0)
        sm = screen.px(mid[None])[0]
        o = screen.px((mid + out)[None])[0] - sm
        ed = e / (np.linalg.norm(e) or 1.0)
        o = o - ed * np.dot(o, ed)
        if np.linalg.norm(o) < 1e-6:
            o = np.array([-ed[1], ed[0]])
        o /= np.linalg.norm(o)
        k = float(screen.px_per_unit(mid[None])[0])
        scale = max(label.size / box[2], SHAPE_PX / (box[1] * k))
        w_px, h_px = box[0] * scale * k, box[1] * scale * k
        for gap in (0.5, 1.2):
            c = sm + o * (h_px / 2 + gap * h_px + 2)
            quad = _rect(c, w_px / 2, h_px / 2, roll)
            delta = c - sm
            pos = mid + (delta[0] * screen.right - delta[1] * screen.up) / k
            ok = _clear(quad, placed, screen) and _apart_elsewhere(
                _corners(pos, _billboard_matrix(screen, roll), scale, box), placed, others)
            if ok or best is None:
                d = float(screen.depth(mid[None])[0])
                best = (pos, d, scale, quad)
            if ok:
                break
        if ok:
            break
    pos, d, scale, quad = best
    pos, f = _slide(screen, pos, d, nearest_under(fp, quad))
    mat = _billboard_matrix(screen, roll)
    pos, f = _slide_elsewhere(screen, pos, f, mat, scale, box, others)
    return Placed(label.key, mat, pos, scale * f, True, roll, quad,
                  _corners(pos, mat, scale * f, box))


def _face_frame(label, plan, screen: Screen, face_matrix):
    m = plan.matrix(label.matrix) if label.matrix else None
    if m is None:
        return None
    n = m.rows * m.cols
    corners = np.asarray(m.positions, dtype=np.float64)[
        np.unique([0, m.cols - 1, n - m.cols, n - 1])]
    centre = corners.mean(axis=0)
    right, up = face_matrix[:, 0], face_matrix[:, 1]
    half_w = float(np.abs((corners - centre) @ right).max()) + 0.5
    half_h = float(np.abs((corners - centre) @ up).max()) + 0.5
    return m, centre, half_w, half_h


def _clear_elsewhere(corners, placed, others, exclude) -> bool:
    """Is a text with these world corners clear in the other frames too (in frame, not
    covered, not over a placed text)?"""
    for screen, fp in others:
        quad = screen.px(corners)
        if not _in_frame(quad, screen.size):
            return False
        if any(p.corners is not None and polygons_overlap(_grown(quad), screen.px(p.corners))
               for p in placed):
            return False
        if nearest_under(fp, quad, exclude=exclude) < float(screen.depth(corners).max()):
            return False
    return True


def _apart_elsewhere(corners, placed, others) -> bool:
    """Is a text with these world corners clear of the placed texts in the other frames?
    (Camera-facing texts are brought forward past what covers them afterwards.)"""
    for screen, _fp in others:
        quad = screen.px(corners)
        if any(p.corners is not None and polygons_overlap(_grown(quad), screen.px(p.corners))
               for p in placed):
            return False
    return True


def _corners(position, matrix, scale, box) -> np.ndarray:
    w, h = box[0] * scale / 2, box[1] * scale / 2
    return np.array([position + matrix @ np.array([sx * w, sy * h, 0.0])
                     for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def place_name(label, box, fp: Footprints, screen: Screen, placed, face_matrix,
               plan, lift: float = FACE_LIFT, others=()) -> Placed:
    """A name on its face (mm), as large as mm makes it and at least NAME_PX tall, where
    nothing covers it; else turned to the camera over its face."""
    frame = _face_frame(label, plan, screen, face_matrix)
    base = label.size / box[2]
    if frame is not None:
        m, centre, half_w, half_h = frame
        fit = min(0.9 * 2 * half_w / box[0], 0.8 * 2 * half_h / box[1])
        # On a tall narrow face a long name reads along the face's length, as mm draws it,
        # when that makes it much larger.
        fit_along = min(0.9 * 2 * half_h / box[0], 0.8 * 2 * half_w / box[1])
        if min(base, fit_along) > 1.5 * min(base, fit):
            r, u, n = face_matrix[:, 0], face_matrix[:, 1], face_matrix[:, 2]
            face_matrix = np.stack([u, -r, n], axis=1)
            half_w, half_h, fit = half_h, half_w, fit_along
    right, up, normal = face_matrix[:, 0], face_matrix[:, 1], face_matrix[:, 2]
    if frame is not None:
        steps = (0.0, 0.15, -0.15, 0.3, -0.3)
        offsets = sorted(((fx, fy) for fx in steps for fy in steps),
                         key=lambda o: abs(o[0]) + abs(o[1]))

        def corners_at(c3, scale):
            return np.array([c3 + sx * right * box[0] * scale / 2 + sy * up * box[1] * scale / 2
                             for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])

        # as large as mm makes it first, anywhere clear on the face; smaller only if none is
        for shrink in (1.0, 0.75, 0.55):
            scale = min(base, fit) * shrink
            for fx, fy in offsets:
                # the text stays on its face
                room_x = max(0.0, 0.95 * half_w - box[0] * scale / 2)
                room_y = max(0.0, 0.95 * half_h - box[1] * scale / 2)
                dx, dy = fx * 2 * half_w, fy * 2 * half_h
                if abs(dx) > room_x or abs(dy) > room_y:
                    continue
                c3 = centre + right * dx + up * dy + normal * lift
                s_here = scale
                corners = corners_at(c3, s_here)
                quad = screen.px(corners)
                height = quad_height(quad)
                if height < NAME_PX and shrink == 1.0:   # room to grow on its face?
                    grown = s_here * NAME_PX / max(height, 1e-6) * 1.05
                    if grown <= fit and abs(dx) <= max(0.0, 0.95 * half_w - box[0] * grown / 2) \
                            and abs(dy) <= max(0.0, 0.95 * half_h - box[1] * grown / 2):
                        s_here = grown
                        corners = corners_at(c3, s_here)
                        quad = screen.px(corners)
                        height = quad_height(quad)
                if height < NAME_PX * 0.999:
                    continue
                if not _clear(quad, placed, screen):
                    continue
                # anything nearer than the text's far end may cover part of it
                if nearest_under(fp, quad, exclude=m.key) < float(screen.depth(corners).max()):
                    continue
                if not _clear_elsewhere(corners, placed, others, m.key):
                    continue
                return Placed(label.key, face_matrix, c3, s_here, False, 0.0, quad, corners)
        anchor = centre + normal * lift
    else:
        anchor = np.asarray(label.position, dtype=np.float64)
    # Turned to the camera, at least NAME_PX tall, slid in front of what covers it.
    k = float(screen.px_per_unit(anchor[None])[0])
    scale = max(base, NAME_PX * 1.1 / (box[2] * k))
    sc = screen.px(anchor[None])[0]
    quad = None
    h_px = box[1] * scale * k
    steps = [(dx, dy) for r in range(0, 5) for dx in (0.0, -r, r) for dy in (0.0, 1.2 * r, -1.2 * r)]
    for dx, dy in steps:
        off = np.array([dx * h_px, dy * h_px])
        q = _rect(sc + off, box[0] * scale * k / 2, h_px / 2, 0.0)
        moved = anchor + (off[0] * screen.right - off[1] * screen.up) / k
        if _clear(q, placed, screen) and _apart_elsewhere(
                _corners(moved, _billboard_matrix(screen, 0.0), scale, box), placed, others):
            quad = q
            sc = sc + off
            break
    if quad is None:
        quad = _rect(sc, box[0] * scale * k / 2, box[1] * scale * k / 2, 0.0)
    delta = sc - screen.px(anchor[None])[0]
    pos = anchor + (delta[0] * screen.right - delta[1] * screen.up) / k
    d = float(screen.depth(pos[None])[0])
    pos, f = _slide(screen, pos, d, nearest_under(fp, quad))
    mat = _billboard_matrix(screen, 0.0)
    pos, f = _slide_elsewhere(screen, pos, f, mat, scale, box, others)
    return Placed(label.key, mat, pos, scale * f, True, 0.0, quad,
                  _corners(pos, mat, scale * f, box))


def _slide_elsewhere(screen, pos, f, mat, scale, box, others):
    """Slide a camera-facing text further if something covers it in another frame."""
    for other, fp in others:
        corners = _corners(pos, mat, scale * f, box)
        quad = other.px(corners)
        nearest = nearest_under(fp, quad)
        d = float(other.depth(corners).max())
        if math.isfinite(nearest) and d > nearest - CLEARANCE:
            depth = float(screen.depth(pos[None])[0])
            pos, g = _slide(screen, pos, depth, depth - (d - nearest) - CLEARANCE)
            f *= g
    return pos, f


def place_all(plan, boxes: dict, screen: Screen, face_matrices: dict,
              lift: float = FACE_LIFT, other_screens=(),
              line_floor: float = 0.0, line_weight: float = 1.0) -> dict[str, Placed]:
    """Placement of every label: shape labels first (they have the least room), then names
    by face size, largest first. boxes[key] = (width, height, cap height) of the text at
    font size 1."""
    fp = footprints(plan, screen, line_floor, line_weight)
    others = [(o, footprints(plan, o, line_floor, line_weight)) for o in other_screens]
    placed: list[Placed] = []
    out = {}
    # the axes' letters first: they belong at their arrow heads, the others can move
    fixed = [l for l in plan.labels if l.kind == "axis"]
    shapes = [l for l in plan.labels if l.kind == "shape"]
    names = sorted((l for l in plan.labels if l.kind not in ("shape", "axis")),
                   key=lambda l: -l.size)
    for label in fixed + shapes + names:
        box = boxes[label.key]
        if label.kind == "shape" and label.edge:
            p = place_shape(label, box, fp, screen, placed, others)
        elif label.key in face_matrices:
            p = place_name(label, box, fp, screen, placed, face_matrices[label.key], plan,
                           lift, others)
        else:
            p = place_name(label, box, fp, screen, placed, _billboard_matrix(screen, 0.0),
                           plan, lift, others) if label.matrix else _free(label, box, fp, screen, placed)
        placed.append(p)
        out[label.key] = p
    return out


def _free(label, box, fp, screen, placed) -> Placed:
    """A label of a hand-made plan (no face, no edge): camera-facing at its position."""
    pos = np.asarray(label.position, dtype=np.float64)
    k = float(screen.px_per_unit(pos[None])[0])
    scale = max(label.size / box[2], SHAPE_PX / (box[2] * k))
    quad = _rect(screen.px(pos[None])[0], box[0] * scale * k / 2, box[1] * scale * k / 2, 0.0)
    pos, f = _slide(screen, pos, float(screen.depth(pos[None])[0]), nearest_under(fp, quad))
    mat = _billboard_matrix(screen, 0.0)
    return Placed(label.key, mat, pos, scale * f, True, 0.0, quad, _corners(pos, mat, scale * f, box))
