"""Our spec -> mm's params tree and an mm link (`?params=`, or compressed past mm's limit),
with notes on what mm cannot show."""
from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from ...core import expr as exprmod
from ...core import spec as specmod
from .compressed import compress
from .defaults import MM_DECO, MM_URL, URL_LIMIT, _PLACEMENT_KEYS, _SPIN_SECONDS, _VIZ_KEYS
from .views import _camera, child_placement, dataclass_placement

log = logging.getLogger("mm_blender.interop.mm_links")


_TRANSPOSED_INIT = {"rows": "cols", "cols": "rows", "row major": "col major",
                    "col major": "row major", "tril mask": "triu mask", "triu mask": "tril mask",
                    "eye": "eye", "uniform": "uniform", "gaussian": "gaussian",
                    "pt linear": "pt linear", "zeros": "zeros", "ones": "ones"}
_RANDOM_INITS = ("uniform", "gaussian", "pt linear")


def _mm_leaf(spec: specmod.Spec, leaf: specmod.LeafSpec, notes: list[str]) -> dict:
    init, formula, url = leaf.init, leaf.formula, leaf.url
    lo, hi, dropout = leaf.min, leaf.max, leaf.dropout
    if init == "transpose":
        src = spec.leaves[leaf.source]
        lo, hi, dropout = src.min, src.max, src.dropout
        if src.init in _TRANSPOSED_INIT:
            init = _TRANSPOSED_INIT[src.init]
            if init in _RANDOM_INITS:
                notes.append(f"leaf {leaf.name!r}: the transpose of {src.name!r} is exported as "
                             f"its own {init!r} matrix (mm draws it separately)")
        elif src.init == "diff":
            init, formula = "expr", "i == j ? 1 : (j == i + 1 ? -1 : 0)"
        elif src.init == "expr":
            # swap the roles of i/j and h/w by calling the source formula with them swapped
            init, formula = "expr", f"((i, j, h, w) => ({src.formula}))(j, i, w, h)"
        else:
            notes.append(f"leaf {leaf.name!r}: init 'transpose' of a {src.init!r} leaf has no "
                         "mm equivalent; exported as 'gaussian'")
            init = "gaussian"
    if init == "zeros":
        init, formula = "expr", "0"
    elif init == "ones":
        init, formula = "expr", "1"
    elif init == "file":
        notes.append(f"leaf {leaf.name!r}: init 'file' ({leaf.file}"
                     f"{' / ' + leaf.tensor if leaf.tensor else ''}) has no mm equivalent "
                     "(mm reads CSV over http only); exported as 'gaussian'")
        init = "gaussian"
    return {"name": leaf.name, "matmul": False, "h": leaf.h, "w": leaf.w, "init": init,
            "url": url if init == "url" else "", "expr": formula if init == "expr" else "",
            "min": lo, "max": hi, "dropout": dropout}


def mm_params_from_spec(spec: specmod.Spec, notes: list[str] | None = None) -> dict:
    """mm's params tree for a spec. What mm cannot show is appended to `notes` (and logged)."""
    notes = [] if notes is None else notes
    start = len(notes)
    L, V, D, A = spec.layout, spec.viz, spec.deco, spec.anim

    def place_of(ms: specmod.MatmulSpec, parent: dict, is_left: bool) -> dict:
        if L.scheme == "custom" and ms.placement is not None:
            return dataclass_placement(ms.placement)
        return child_placement(parent, L.scheme, is_left)

    def mm_node(node: exprmod.Node, blocks: dict, place: dict, is_left: bool, root: bool):
        if isinstance(node, exprmod.Leaf):
            return _mm_leaf(spec, spec.leaves[node.name], notes)
        ms = spec.matmuls[node.name]
        if root:
            mine_blocks, mine_place = blocks, place
        else:
            i, j = (blocks["i"], blocks["k"]) if is_left else (blocks["k"], blocks["j"])
            mine_blocks = {"i": i, "j": j, "k": ms.k_blocks}
            mine_place = place_of(ms, place, is_left)
        out: dict[str, Any] = {"name": node.name}
        if not root:
            out["matmul"] = True
        out["epilog"] = ms.epilogue
        out["left"] = mm_node(node.left, mine_blocks, mine_place, True, False)
        out["right"] = mm_node(node.right, mine_blocks, mine_place, False, False)
        if not root:
            out["anim"] = {"alg": ms.alg}
            out["block"] = {"i blocks": mine_blocks["i"], "k blocks": mine_blocks["k"],
                            "j blocks": mine_blocks["j"]}
            out["layout"] = {mm: mine_place[ours] for mm, ours in _PLACEMENT_KEYS.items()}
        return out

    root_place = dataclass_placement(L.placement)
    root_blocks = {"i": spec.blocks.i, "j": spec.blocks.j, "k": spec.blocks.k}
    tree = mm_node(spec.tree, root_blocks, root_place, True, True)
    params: dict[str, Any] = {"expr": exprmod.to_text(spec.tree), **tree}
    params["anim"] = {"fuse": A.fuse, "speed": A.speed, "hide inputs": A.hide_inputs,
                      "alg": A.alg, "spin": _SPIN_SECONDS / A.spin if A.spin else 0}
    params["block"] = {"i blocks": spec.blocks.i, "k blocks": spec.blocks.k,
                       "j blocks": spec.blocks.j}
    params["layout"] = {"scheme": L.scheme, "gap": L.gap, "scatter": L.scatter,
                        "molecule": L.molecule, "blast": L.blast,
                        **{mm: root_place[ours] for mm, ours in _PLACEMENT_KEYS.items()}}
    params["deco"] = {**MM_DECO, "legends": D.legends, "shape": D.shape_labels,
                      "row guides": D.row_guides, "flow guides": D.flow_guides,
                      "spotlight": D.spotlight, "interior spotlight": D.interior_spotlight,
                      "axes": D.axes, "lens size": D.lens_size,
                      "magnification": D.magnification}
    if not D.lens:   # a link carrying lens settings imports with a lens
        del params["deco"]["lens size"], params["deco"]["magnification"]
    params["viz"] = {mm: getattr(V, ours) for mm, ours in _VIZ_KEYS.items()}
    params["cam"] = _camera(spec)
    params["compress"] = False

    # what mm cannot show
    counts: dict[str, int] = {}
    for leaf in exprmod.leaves(spec.tree):
        counts[leaf.name] = counts.get(leaf.name, 0) + 1
    for leaf_name, n in counts.items():
        leaf = spec.leaves[leaf_name]
        if n > 1 and (leaf.init in _RANDOM_INITS or leaf.dropout):
            notes.append(f"leaf {leaf_name!r} appears {n} times; mm draws its random values "
                         "separately for each occurrence")
    if any(leaf.init in _RANDOM_INITS or leaf.dropout for leaf in spec.leaves.values()):
        notes.append("random initialisers: mm does not take a seed, so its values differ")
    if V.colormap != "mm":
        notes.append(f"viz.colormap {V.colormap!r}: mm has only its own hue mapping")
    if V.cell_shape != "sphere":
        notes.append(f"viz.cell_shape {V.cell_shape!r}: mm draws round points")
    if spec.look != specmod.LookSpec():
        notes.append(f"look (background {spec.look.background!r}, view {spec.look.view!r}): "
                     "mm has a black background and its own camera")
    if spec.model is not None:
        notes.append(f"model {spec.model.model!r}: mm cannot capture real model data; the "
                     "leaves are exported with their initialisers")
    if D.lens and (D.lens_row >= 0 or D.lens_col >= 0 or D.lens_decimals != 2):
        notes.append("deco.lens_row / lens_col / lens_decimals: mm's lens follows the mouse "
                     "and chooses its own precision")
    if D.spotlight_row >= 0:
        notes.append(f"deco.spotlight_row / spotlight_col ({D.spotlight_row}, "
                     f"{D.spotlight_col}): mm spotlights the cell under the mouse")
    if A.frames_per_step or A.seconds:
        notes.append("anim.frames_per_step / anim.seconds: mm animates in real time by speed")
    for note in notes[start:]:
        log.info("mm export: %s", note)
    return params



def _query(params: dict) -> str:
    return urllib.parse.urlencode({"params": json.dumps(params, separators=(",", ":"))})


def mm_link_from_spec(spec: specmod.Spec, base: str = MM_URL,
                      notes: list[str] | None = None) -> str:
    """An mm URL showing the spec: `?params=<JSON>`, or the compressed form past mm's limit."""
    params = mm_params_from_spec(spec, notes)
    query = _query(params)
    if len(query) > URL_LIMIT:
        params["compress"] = True
        query = urllib.parse.urlencode(compress(params))
    return f"{base}?{query}"

