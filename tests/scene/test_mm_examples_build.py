"""Every example of the mm article round-trips "encode as a link, import, build": its params
as an mm `?params=` link -> mm_params_from_text -> spec_dict_from_mm -> spec -> values (no
network: leaves whose data is remote get seeded random arrays) -> plan -> Blender objects.

All 37 are built in Blender, including the ~1.1M-cell attention and full-layer ones (the
whole file takes about 15 s on 2 cores, so no example is reduced to a plan-only check)."""
import json
import urllib.parse
from pathlib import Path

import bpy
import numpy as np
import pytest

from mm_blender.core import expr as exprmod
from mm_blender.core import spec as specmod
from mm_blender.core.evaluate import evaluate
from mm_blender.core.scene_plan import make_plan
from mm_blender.interop.mm_links import MM_URL, mm_params_from_text, spec_dict_from_mm
from mm_blender.scene import cells
from mm_blender.scene.build import build

ARTICLE = Path(__file__).resolve().parent.parent / "data" / "mm_article_examples.json"
EXAMPLES = {e["label"]: e["params"] for e in json.loads(ARTICLE.read_text(encoding="utf-8"))}
assert len(EXAMPLES) == 37


def mm_shapes(params: dict) -> dict[str, tuple[str, int, int]]:
    """(role, rows, cols) of every node of mm's params tree by tree path, read from the JSON
    alone: a leaf's h and w, a matmul's rows from its left and columns from its right (mm
    leaves stale h/w on matmul nodes, so those are not read)."""
    out = {}

    def walk(node, path, root=False):
        if root or node.get("matmul"):
            (_, rows, _), (_, _, cols) = walk(node["left"], path + "l"), walk(node["right"],
                                                                               path + "r")
            out[path] = ("result", rows, cols)
        else:
            out[path] = ("leaf", int(node["h"]), int(node["w"]))
        return out[path]

    walk(params, "", root=True)
    return out


def remote_data(spec) -> dict[str, np.ndarray]:
    """Seeded random arrays of the declared shapes for the leaves mm downloads (init 'url')."""
    rng = np.random.default_rng(20240601)
    return {leaf.name: rng.standard_normal((leaf.h, leaf.w)).astype(np.float32)
            for leaf in sorted(spec.leaves.values(), key=lambda leaf: leaf.name)
            if leaf.init == "url"}


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_article_example_links_import_and_build(label, products_in_blender):
    params = EXAMPLES[label]
    link = MM_URL + "?params=" + urllib.parse.quote(json.dumps(params))
    read = mm_params_from_text(link, allow_network=False)
    assert read == params
    data, _ = spec_dict_from_mm(read, name=label)
    spec = specmod.from_dict(data, name=label)
    overrides = remote_data(spec)
    values = evaluate(spec, overrides, allow_network=False)
    plan = make_plan(spec, values)
    coll = build(plan)

    assert coll.name == label and coll.name in bpy.context.scene.collection.children
    objects = [o for o in coll.all_objects if o.get("mm_role") in ("leaf", "result")]
    by_path = {}
    for obj in objects:
        assert (obj["mm_path"], obj["mm_role"]) not in by_path, f"{obj.name} drawn twice"
        by_path[(obj["mm_path"], obj["mm_role"])] = obj

    # one object per node of the expression, with mm's shapes
    expected = mm_shapes(params)
    assert sorted(by_path) == sorted((path, role) for path, (role, _, _) in expected.items())
    nodes = {node.path: node for node in exprmod.walk(spec.tree)}
    for path, (role, rows, cols) in expected.items():
        obj = by_path[(path, role)]
        node = nodes[path]
        assert obj["mm_name"] == node.name
        assert (obj["mm_rows"], obj["mm_cols"]) == (rows, cols), obj.name
        assert len(obj.data.vertices) == rows * cols, obj.name
        if role == "result":
            for side, operand in (("mm_left", node.left), ("mm_right", node.right)):
                other = bpy.data.objects.get(obj[side])
                assert other is not None, f"{obj.name}: {side} {obj[side]!r} does not exist"
                assert other.name in coll.all_objects
                assert other["mm_path"] == operand.path
                assert other["mm_role"] == ("result" if isinstance(operand, exprmod.MatMul)
                                            else "leaf")
        elif node.name in overrides:   # the remote leaves show the data given for them
            assert np.array_equal(cells.read_values(obj), overrides[node.name].ravel())
    # every product's values, computed with numpy from its operands as Blender holds them
    results = [o for o in objects if o["mm_role"] == "result"]
    ropes = sum("rope" in o["mm_epilogue"] for o in results)
    assert products_in_blender(objects) == len(results) - ropes
