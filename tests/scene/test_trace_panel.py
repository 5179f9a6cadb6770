"""The panel's "Trace from a File" operator: it calls the same function as the CLI, saves the
traced tree as a user preset, loads it into the panel and builds; errors cancel with a report
and leave the scene alone."""
from pathlib import Path

import bpy
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mm_blender  # noqa: E402
from mm_blender.ui import actions, operators, props  # noqa: E402
from mm_blender.ui import presets as ui_presets  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "trace_examples.py"


@pytest.fixture(scope="module", autouse=True)
def registered():
    mm_blender.register()
    yield
    mm_blender.unregister()


@pytest.fixture(autouse=True)
def user_presets_dir(tmp_path):
    ui_presets.set_user_dir(tmp_path / "user_presets")
    yield tmp_path / "user_presets"
    ui_presets.set_user_dir(None)


def test_trace_from_a_file_loads_and_builds(user_presets_dir):
    settings = props.settings_of(bpy.context.scene)
    result = bpy.ops.mm.trace_file(filepath=str(EXAMPLES), function="causal_head")
    assert result == {"FINISHED"}
    assert (user_presets_dir / "trace_examples_causal_head.toml").is_file()
    assert (user_presets_dir / "trace_examples_causal_head.npz").is_file()
    assert settings.expr == "out = (attn = (q = x @ w_q) @ (k_t = w_k_t @ x_t)) @ (v = x @ w_v)"
    assert settings.user_preset_name == "trace_examples_causal_head"
    spec, coll = actions.build(bpy.context.scene, settings)
    root = [o for o in coll.all_objects if o.get("mm_name") == "out"
            and o.get("mm_role") == "result"][0]
    from mm_blender.scene import cells
    from mm_blender.tracing import load_function
    want = load_function(f"{EXAMPLES}:causal_head")().numpy()
    np.testing.assert_allclose(cells.read_values(root).reshape(16, 8), want, atol=1e-5)


def test_trace_errors_cancel_and_leave_the_scene_alone(tmp_path):
    before = sorted(o.name for o in bpy.data.objects)
    stub = type("Stub", (), {"reports": [], "filepath": str(EXAMPLES), "function": "nope",
                             "root": "", "batch": 0, "head": 0,
                             "report": lambda self, kind, msg: self.reports.append(msg),
                             "run": lambda self, ctx: operators.MM_OT_trace_file.run(self, ctx)})()
    assert operators.MM_OT_trace_file.execute(stub, bpy.context) == {"CANCELLED"}
    assert "has no function 'nope'" in stub.reports[0]
    assert sorted(o.name for o in bpy.data.objects) == before
