"""mm's defaults (index.html's root params, viz.js defaultLeft/...), the tables that map mm's
keys to ours, and the type of every mm key. No bpy here."""
from __future__ import annotations

import math

from ...core import spec as specmod

MM_URL = "https://bhosmer.github.io/mm/index.html"
URL_LIMIT = 2048            # mm switches to the compressed form past this many query characters
CONFIG_TIMEOUT_S = 10.0
CONFIG_MAX_BYTES = 4 << 20  # a params file is a few kB; anything huge is not one
TEXT_MAX_BYTES = 4 << 20

# mm's defaults: the root params of index.html, and viz.js defaultLeft/defaultRight/...
MM_ANIM = {"fuse": "none", "speed": 20, "hide inputs": False, "alg": "none", "spin": 0}
MM_BLOCK = {"i blocks": 1, "k blocks": 1, "j blocks": 1}
MM_PLACEMENT = {"polarity": "negative", "left placement": "left", "right placement": "top",
                "result placement": "front"}
MM_LAYOUT = {"scheme": "blocks", "gap": 4, "scatter": 0, "molecule": 1, "blast": 0,
             **MM_PLACEMENT}
MM_DECO = {"legends": 6, "shape": True, "spotlight": 2, "row guides": 0.6, "flow guides": 0.5,
           "lens size": 0.5, "magnification": 7, "interior spotlight": False, "axes": False}
MM_VIZ = {"sensitivity": "global", "min size": 0.2, "min light": 0.4, "max light": 0.7,
          "elem scale": 1.25, "zero hue": 0.77, "hue gap": 0.74, "hue spread": 0.04}
MM_LEFT = {"name": "L", "matmul": False, "h": 32, "w": 32, "init": "row major", "url": "",
           "min": -1, "max": 1, "dropout": 0}
MM_RIGHT = {**MM_LEFT, "name": "R", "init": "col major"}
MM_EPILOGUES = specmod.EPILOGUES + ("softmax(tril(x/8))",)

# mm key -> our key, per section
_LAYOUT_KEYS = {"scheme": "scheme", "gap": "gap", "scatter": "scatter", "molecule": "molecule",
                "blast": "blast", "polarity": "polarity", "left placement": "left_placement",
                "right placement": "right_placement", "result placement": "result_placement"}
_PLACEMENT_KEYS = {k: v for k, v in _LAYOUT_KEYS.items() if k in MM_PLACEMENT}
_ANIM_KEYS = {"alg": "alg", "fuse": "fuse", "speed": "speed", "hide inputs": "hide_inputs",
              "spin": "spin"}
_VIZ_KEYS = {"sensitivity": "sensitivity", "min size": "min_size", "min light": "min_light",
             "max light": "max_light", "elem scale": "elem_scale", "zero hue": "zero_hue",
             "hue gap": "hue_gap", "hue spread": "hue_spread"}
_DECO_KEYS = {"legends": "legends", "shape": "shape_labels", "row guides": "row_guides",
              "flow guides": "flow_guides"}
# mm's lens, spotlight and axes settings (ours: scene/overlays.py); a link that carries lens
# size or magnification gets a lens
_DECO_OVERLAY_KEYS = {"lens size": "lens_size", "magnification": "magnification",
                      "spotlight": "spotlight", "interior spotlight": "interior_spotlight",
                      "axes": "axes"}
_ROOT_KEYS = {"expr", "name", "epilog", "left", "right", "anim", "block", "layout", "deco", "viz"}
_SILENT_KEYS = {"cam", "compress", "diag", "folder", "count", "total", "sync_expr", "is_child",
                "matmul", "getGlobalAbsmax"}
_LEAF_KEYS = {"name", "matmul", "h", "w", "init", "url", "expr", "min", "max", "dropout"}
_STALE_LEAF_KEYS = _LEAF_KEYS - {"name", "matmul"}  # left on matmul nodes by mm's GUI

# The type of every mm key, by its last path segment (the compressed form carries strings).
_BOOL_KEYS = {"matmul", "hide inputs", "shape", "interior spotlight", "axes", "compress"}
_NUMBER_KEYS = {"h", "w", "min", "max", "dropout", "speed", "spin", "i blocks", "j blocks",
                "k blocks", "gap", "scatter", "molecule", "blast", "legends", "spotlight",
                "row guides", "flow guides", "lens size", "magnification", "min size",
                "min light", "max light", "elem scale", "zero hue", "hue gap", "hue spread",
                "x", "y", "z"}

# mm's spin turns the camera by (elapsed ms) * spin / 20000 radians; ours is seconds per turn.
_SPIN_SECONDS = 40 * math.pi
