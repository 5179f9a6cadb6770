"""Placements and the camera between mm's params and ours (shared by import and export)."""
from __future__ import annotations

import math

from ...core import expr as exprmod
from ...core import layout
from ...core import spec as specmod


def child_placement(parent: dict, scheme: str, is_left: bool) -> dict:
    """A child matmul's placement (a dict of our four placement keys) as the layout scheme
    derives it from its parent's; `custom` children without their own derive as `blocks`."""
    derived = layout.child_placement(specmod.Placement(**parent),
                                     "blocks" if scheme == "custom" else scheme, is_left)
    return dataclass_placement(derived)



def dataclass_placement(p: specmod.Placement) -> dict:
    """A Placement as a dict of its four keys."""
    return {"polarity": p.polarity, "left_placement": p.left_placement,
            "right_placement": p.right_placement, "result_placement": p.result_placement}


def camera_direction(cam) -> list[float] | None:
    """mm's camera (three.js world: y up, z toward the viewer, the scene turned over x) as
    our look.camera: the direction from the target to the camera in Blender's axes. The
    distance is not kept: we frame the camera to fit the picture."""
    if not isinstance(cam, dict):
        return None
    try:
        pos = [float(cam[a]) for a in "xyz"]
        t = cam.get("target") or {}
        target = [float(t.get(a, 0.0)) for a in "xyz"]
    except (KeyError, TypeError, ValueError):
        return None
    d = [pos[0] - target[0], -(pos[2] - target[2]), pos[1] - target[1]]
    norm = math.sqrt(sum(c * c for c in d))
    if not math.isfinite(norm) or norm == 0:
        return None
    return [round(c / norm, 4) for c in d]


def _camera(spec: specmod.Spec) -> dict:
    """The preset's viewpoint (look.camera) or mm's default (-1.5, 1.5, 1.5), at a distance
    scaled to the scene's extent."""
    extent = 0
    for node in exprmod.matmuls(spec.tree):
        extent += spec.shape(node.left)[1]
    h, w = spec.shape(spec.tree)
    size = max(32.0, (h + w + extent) / 3 * 1.2)
    if len(spec.look.camera) == 3:
        dx, dy, dz = spec.look.camera
        scale = 1.5 * size * math.sqrt(3) / (math.sqrt(dx * dx + dy * dy + dz * dz) or 1.0)
        return {"x": dx * scale, "y": dz * scale, "z": -dy * scale}
    return {"x": -1.5 * size, "y": 1.5 * size, "z": 1.5 * size}

