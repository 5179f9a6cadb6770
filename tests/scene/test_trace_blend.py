"""Traced torch code, built with the bpy wheel, saved and reopened: every matmul in the saved
.blend equals its epilogue applied to left @ right (operands found through mm_left /
mm_right), and the root equals the function's output where the function returns it."""
from pathlib import Path

import bpy
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mm_blender import api  # noqa: E402
from mm_blender.core.evaluate import apply_epilogue  # noqa: E402
from mm_blender.scene import cells  # noqa: E402
from mm_blender.tracing import Trace, load_function  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "trace_examples.py"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _matrix(obj):
    return cells.read_values(obj).reshape(obj["mm_rows"], obj["mm_cols"]).astype(np.float64)


def _built(spec, tmp_path):
    api.build(spec)
    path = tmp_path / "traced.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    coll = bpy.data.collections[spec.name]
    return {o["mm_name"]: o for o in coll.all_objects
            if o.get("mm_role") == "result"}


def _function_output(name, result, root):
    if name == "multihead_attention":   # the output projection is the tree of its own
        return result[0].detach().numpy() if root == "mha.out_proj" else None
    if name == "smollm2_head":
        return result.out               # the capture's out = head_out @ wO
    if name in ("mlp", "causal_head"):
        return result.detach().numpy()
    return None                         # the encoder layer ends in a norm: not a matmul


@pytest.mark.parametrize("name, root", [
    ("mlp", None), ("causal_head", None), ("multihead_attention", None),
    ("multihead_attention", "mha.out_proj"), ("encoder_layer", None), ("encoder_layer", "layer.linear2"),
    ("smollm2_head", None)])
def test_traced_example_in_a_saved_blend(name, root, tmp_path):
    traced = Trace.run(load_function(f"{EXAMPLES}:{name}"), label=name)
    spec = traced.save(tmp_path / f"{name}.toml", root=root)
    results = _built(spec, tmp_path)
    assert set(results) == {m.name for m in spec.matmuls.values()}
    for obj in results.values():
        left, right = bpy.data.objects[obj["mm_left"]], bpy.data.objects[obj["mm_right"]]
        L, R = _matrix(left), _matrix(right)
        want = apply_epilogue(L @ R, obj["mm_epilogue"], L.shape[1])
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(_matrix(obj), want, rtol=1e-5, atol=1e-5 * scale,
                                   err_msg=f"{name}: {obj['mm_name']}")
    expected = _function_output(name, traced.result, root)
    if expected is not None:
        root = results[spec.tree.name]
        got = _matrix(root)
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=1e-4,
                                   atol=1e-5 * scale)
