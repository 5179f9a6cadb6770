"""The extension as users get it: `tools/build_extension.py` builds a zip that Blender's
validator accepts and that holds no tests or caches; Blender installs it, the panel and
operators register, a preset builds through the operator, and enabling/disabling three
times leaves nothing registered behind (classes, properties on any type, handlers,
timers, keymaps; after uninstalling, no modules and no sys.path entry).

Blender runs in a subprocess with its own BLENDER_USER_RESOURCES/EXTENSIONS and cache, and
without this repository on sys.path, so only the installed copy can be imported."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "build_extension.py"

# Without the bpy wheel these skip, except in CI, which installs it (see tests/conftest.py)
_IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None and not _IN_CI,
                                reason="needs the bpy wheel")


def _isolated_env(base: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MM_BLENDER_RUNTIME_DIR")}
    for var, sub in (("BLENDER_USER_RESOURCES", "resources"),
                     ("BLENDER_USER_EXTENSIONS", "extensions"),
                     ("XDG_CACHE_HOME", "cache"), ("HOME", "home")):
        (base / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(base / sub)
    return env


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    zips = list(out.glob("*.zip"))
    assert len(zips) == 1, zips
    return zips[0]


def _load_tool():
    spec = importlib.util.spec_from_file_location("build_extension", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_imports_itself_relatively():
    """Installed, the package is `bl_ext.<repo>.mm_blender.mm_blender`: an absolute
    `import mm_blender...` inside it fails with 'No module named mm_blender'."""
    import re
    pattern = re.compile(r"^\s*(from|import)\s+mm_blender\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "mm_blender").rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == [], f"use relative imports (from ..x import y) in: {offenders}"


def test_zip_is_valid_and_holds_only_what_users_need(built_zip):
    assert built_zip.name == "mm_blender-0.1.0.zip"
    tool = _load_tool()
    tool.run_blender_ext(["validate", str(built_zip)])          # Blender's own validator
    with zipfile.ZipFile(built_zip) as zf:
        names = zf.namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "mm_blender/ui/panel.py" in names
    assert any(n.startswith("presets/") and n.endswith(".toml") for n in names)
    assert any(n.startswith("render_jobs/") for n in names)   # users run these with -b -P
    for bad in ("tests/", "docs/", "tools/", "bench/", ".venv/", ".git", "__pycache__",
                ".pytest_cache", ".hypothesis", ".ci/", "dist/", "out/"):
        assert not [n for n in names if n.startswith(bad) or f"/{bad}" in n], bad
    for bad in ("Makefile", "pyproject.toml", "requirements.txt", "requirements-models.txt"):
        assert bad not in names
    assert not [n for n in names if n.endswith((".pyc", ".blend1", ".whl")) or "numpy/" in n]


def test_manifest_rules_the_validator_does_not_check():
    tool = _load_tool()
    good = {"license": ["SPDX:GPL-3.0-or-later"], "blender_version_min": "4.5.0",
            "permissions": {"files": "Read matrix data"}, "tagline": "Matrices as scenes",
            "version": "0.1.0"}
    assert tool.check_manifest(good, "0.1.0") == []
    bad = {**good, "license": ["GPL-3.0-or-later", "SPDX:CC-BY-NC-4.0"],
           "blender_version_min": "4.1.0",
           "permissions": {"files": "", "network": "Downloads things."},
           "tagline": "x" * 70 + "."}
    problems = "\n".join(tool.check_manifest(bad, "0.2.0"))
    for expected in ("must be an SPDX identifier", "not known to be compatible", "4.1.0",
                     "permissions.files", "permissions.network", "tagline", "version"):
        assert expected in problems, (expected, problems)


def test_build_fails_clearly_on_a_bad_manifest(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "__init__.py").write_text("def register(): pass\ndef unregister(): pass\n")
    manifest = (ROOT / "blender_manifest.toml").read_text()
    (src / "blender_manifest.toml").write_text(
        manifest.replace('blender_version_min = "4.5.0"', 'blender_version_min = "4.2.0"'))
    proc = subprocess.run([sys.executable, str(TOOL), "--source", str(src), "--out",
                           str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "blender_version_min" in proc.stderr and "4.2.0" in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.zip"))


INSTALL_SCRIPT = textwrap.dedent(r'''
    import json, sys
    import bpy, addon_utils

    zip_path, result_path = sys.argv[1], sys.argv[2]
    MODULE = "bl_ext.user_default.mm_blender"
    out = {}

    # Everything an add-on can register, recorded while it registers: classes and timers
    # through wrappers (Blender cannot list timers), the rest by snapshots compared later.
    registered_classes, timers = [], []
    _register_class, _register_timer = bpy.utils.register_class, bpy.app.timers.register

    def record_class(cls):
        registered_classes.append(cls)
        return _register_class(cls)

    def record_timer(function, *args, **kwargs):
        timers.append(function)
        return _register_timer(function, *args, **kwargs)

    bpy.utils.register_class, bpy.app.timers.register = record_class, record_timer

    def structs():
        return {n: t for n in dir(bpy.types)
                if isinstance(t := getattr(bpy.types, n), type) and hasattr(t, "bl_rna")}

    def snapshot():
        keymaps = {}
        for kc in bpy.context.window_manager.keyconfigs:
            for km in kc.keymaps:
                keymaps[f"{kc.name}/{km.name}"] = sorted(i.idname for i in km.keymap_items)
        return {
            "types": sorted(dir(bpy.types)),
            "properties": {n: sorted(t.bl_rna.properties.keys()) + sorted(dir(t))
                           for n, t in structs().items()},
            "handlers": {n: [repr(f) for f in h] for n in dir(bpy.app.handlers)
                         if not n.startswith("_") and hasattr(h := getattr(bpy.app.handlers, n), "append")},
            "keymaps": keymaps,
            "modules": sorted(m for m in sys.modules if "mm_blender" in m),
            "path": list(sys.path),
        }

    def changes(before, after):
        """What `after` has that `before` lacked (or lost), per kind of registration."""
        out = {}
        for kind in before:
            a, b = before[kind], after[kind]
            if isinstance(a, dict):
                diff = {k: sorted(set(b.get(k, [])) ^ set(a.get(k, []))) for k in set(a) | set(b)}
                diff = {k: v for k, v in diff.items() if v}
            else:
                diff = sorted(set(b) ^ set(a))
            if diff:
                out[kind] = diff
        out["classes_left"] = sorted(c.__name__ for c in registered_classes if c.is_registered)
        out["timers_left"] = [repr(f) for f in timers if bpy.app.timers.is_registered(f)]
        return {k: v for k, v in out.items() if v}

    def mm_types():
        return sorted(n for n in dir(bpy.types) if n.startswith(("MM_PT_", "MM_OT_", "MM_UL_", "MM_PG_")))

    import importlib.util
    out["repo_on_path"] = importlib.util.find_spec("mm_blender") is not None
    before = snapshot()
    out["types_before"] = mm_types()
    res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                   enable_on_install=True)
    out["install"] = sorted(res)
    module = sys.modules.get(MODULE)
    out["module_loaded"] = module is not None
    out["module_file"] = getattr(module, "__file__", "")
    out["types_installed"] = mm_types()
    out["registered_when_enabled"] = changes(before, snapshot())
    out["scene_prop"] = hasattr(bpy.types.Scene, "mm_blender")
    out["ops"] = [hasattr(bpy.types, "MM_OT_" + op) for op in
                  ("build", "clear", "render_still", "render_animation", "frame_camera",
                   "load_preset", "import_link", "save_preset", "delete_preset")]

    import importlib
    ui_presets = importlib.import_module(MODULE + ".mm_blender.ui.presets")
    core_presets = importlib.import_module(MODULE + ".mm_blender.core.presets")
    infos = ui_presets.builtin()
    out["presets"] = [(p.name, p.group, bool(p.description)) for p in infos]
    out["preset_items"] = len(ui_presets.enum_items())
    sizes = sorted((core_presets.load(p.name).cell_count(), p.name) for p in infos)
    name = sizes[0][1]
    out["built_preset"] = name

    objects_before = len(bpy.data.objects)
    out["load"] = sorted(bpy.ops.mm.load_preset(name=name))
    out["build"] = sorted(bpy.ops.mm.build())
    out["objects_added"] = len(bpy.data.objects) - objects_before
    out["matrices"] = sorted(o["mm_name"] for o in bpy.data.objects if "mm_name" in o)
    out["save"] = sorted(bpy.ops.mm.save_preset(name="my_preset"))
    out["user_dir"] = str(ui_presets.user_dir())
    out["user_presets"] = [p.name for p in ui_presets.user_presets()]
    out["clear"] = sorted(bpy.ops.mm.clear())
    out["objects_after_clear"] = len(bpy.data.objects) - objects_before

    cycles = []
    for _ in range(3):
        addon_utils.disable(MODULE, default_set=True)
        left = changes(before, snapshot())
        # Blender keeps a disabled add-on's own modules imported (re-enabling reuses them);
        # any other module, e.g. the package imported again under another name, is a leak
        own = [m for m in left.get("modules", []) if m == MODULE or m.startswith(MODULE + ".")]
        left["modules"] = sorted(set(left.get("modules", [])) - set(own))
        left = {k: v for k, v in left.items() if v}
        cycles.append({"types": mm_types(), "scene_prop": hasattr(bpy.types.Scene, "mm_blender"),
                       "left": left})
        addon_utils.enable(MODULE, default_set=True)
        cycles[-1]["re_enabled"] = hasattr(bpy.types, "MM_PT_main") and hasattr(bpy.types.Scene, "mm_blender")
    out["cycles"] = cycles

    # uninstalled while enabled, as a user does: Blender disables it and drops its modules
    repos = [r.module for r in bpy.context.preferences.extensions.repos]
    res = bpy.ops.extensions.package_uninstall(repo_index=repos.index("user_default"),
                                               pkg_id="mm_blender")
    out["uninstall"] = sorted(res)
    out["types_after"] = mm_types()
    out["scene_prop_after"] = hasattr(bpy.types.Scene, "mm_blender")
    out["left_after_uninstall"] = changes(before, snapshot())
    json.dump(out, open(result_path, "w"))
''')


def test_install_build_uninstall_in_blender(built_zip, tmp_path):
    script = tmp_path / "install.py"
    script.write_text(INSTALL_SCRIPT)
    result = tmp_path / "result.json"
    env = _isolated_env(tmp_path / "blender")
    proc = subprocess.run([sys.executable, str(script), str(built_zip), str(result)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0 and result.is_file(), proc.stdout[-4000:] + proc.stderr[-4000:]
    out = json.loads(result.read_text())

    assert out["repo_on_path"] is False
    assert out["types_before"] == []
    assert out["install"] == ["FINISHED"]
    assert out["module_loaded"], proc.stderr[-4000:]
    assert out["module_file"].startswith(env["BLENDER_USER_EXTENSIONS"])   # the installed copy
    assert "MM_PT_main" in out["types_installed"]
    assert {"MM_PT_matrices", "MM_PT_layout", "MM_PT_partition", "MM_PT_animation",
            "MM_PT_look", "MM_PT_render", "MM_UL_nodes"} <= set(out["types_installed"])
    assert out["scene_prop"] is True
    assert all(out["ops"])
    enabled = out["registered_when_enabled"]      # the snapshots see what the add-on adds
    assert "MM_PT_main" in enabled["types"] and "mm_blender" in enabled["properties"]["Scene"]
    assert "MM_PT_main" in enabled["classes_left"]
    assert any(m.startswith("bl_ext.user_default.mm_blender") for m in enabled["modules"])

    groups = {group for _, group, _ in out["presets"]}
    assert len(out["presets"]) >= 1 and all(described for *_, described in out["presets"])
    assert groups <= {"single", "expressions", "partitions", "attention", "lora", "other"}
    assert out["preset_items"] >= len(out["presets"]) + len(groups)

    assert out["load"] == ["FINISHED"] and out["build"] == ["FINISHED"], out
    assert out["objects_added"] > 0
    assert len(out["matrices"]) >= 3          # two arguments and a result at least
    assert out["clear"] == ["FINISHED"] and out["objects_after_clear"] == 0
    assert out["save"] == ["FINISHED"] and out["user_presets"] == ["my_preset"]
    user_dir = Path(env["BLENDER_USER_EXTENSIONS"]) / ".user" / "user_default" / "mm_blender"
    assert Path(out["user_dir"]) == user_dir / "presets"   # kept across upgrades

    assert len(out["cycles"]) == 3
    for cycle in out["cycles"]:
        assert cycle["types"] == [], cycle
        assert cycle["scene_prop"] is False
        assert cycle["left"] == {}, cycle["left"]
        assert cycle["re_enabled"] is True

    assert out["uninstall"] == ["FINISHED"]
    assert out["types_after"] == [] and out["scene_prop_after"] is False
    assert out["left_after_uninstall"] == {}, out["left_after_uninstall"]
    installed = Path(env["BLENDER_USER_EXTENSIONS"]) / "user_default" / "mm_blender"
    assert not installed.exists()
