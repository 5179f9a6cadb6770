"""Every static preset, built with the bpy wheel, saved and reopened: the metadata contract
holds, each result equals its epilogue applied to left @ right (read back from the saved
.blend, operands found through mm_left / mm_right), and every cell sits where the core's
layout puts it."""
import bpy
import numpy as np
import pytest

from mm_blender import api
from mm_blender.core import presets
from mm_blender.core.evaluate import apply_epilogue
from mm_blender.core.layout import compute_layout
from mm_blender.scene import cells


def _static_presets():
    names = []
    for info in presets.list_presets():
        spec = presets.load(info.name)
        animated = spec.anim.alg != "none" or any(
            m.alg not in ("inherit", "none") for m in spec.matmuls.values())
        # GPT-2 weights are not on this machine: those presets are tested for their error
        # message in tests/models/test_attention_presets.py
        if animated or (spec.model is not None and spec.model.model.startswith("gpt2")):
            continue
        names.append(info.name)
    return names


STATIC = _static_presets()


def test_the_static_presets_are_many():
    assert len(STATIC) >= 15 and "intro_cube" in STATIC and "attention_smollm2_l5h4" in STATIC


@pytest.mark.parametrize("name", STATIC)
def test_static_preset_in_a_saved_blend(name, tmp_path):
    spec = api.load_spec(name)
    api.build(spec)
    path = tmp_path / f"{name}.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))

    coll = bpy.data.collections[name]
    objs = [o for o in coll.all_objects if "mm_role" in o and o["mm_role"] in ("leaf", "result")]
    layout = compute_layout(spec)
    assert len(objs) == len(layout.mats)
    by_place = {(o["mm_path"], o["mm_role"]): o for o in objs}
    theta, n_pos = ((spec.model.rope_theta, spec.model.tokens) if spec.model else (1e4, 0))
    for mat in layout.mats:
        o = by_place[(mat.path, mat.role)]
        assert (o["mm_name"], o["mm_rows"], o["mm_cols"]) == (mat.node.name, mat.rows, mat.cols)
        assert o.users_collection[0] == coll or coll in o.users_collection
        np.testing.assert_array_equal(cells.read_positions(o), layout.positions(mat))
        if mat.role != "result":
            continue
        left, right = bpy.data.objects[o["mm_left"]], bpy.data.objects[o["mm_right"]]
        L = cells.read_values(left).reshape(left["mm_rows"], left["mm_cols"]).astype(np.float64)
        R = cells.read_values(right).reshape(right["mm_rows"], right["mm_cols"]).astype(np.float64)
        assert o["mm_epilogue"] == spec.matmul(mat.node).epilogue
        want = apply_epilogue(L @ R, o["mm_epilogue"], L.shape[1], theta, n_pos)
        got = cells.read_values(o).reshape(mat.rows, mat.cols)
        scale = max(1.0, float(np.nanmax(np.abs(want))))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale, equal_nan=True,
                                   err_msg=f"{name}: {mat.node.name}")
