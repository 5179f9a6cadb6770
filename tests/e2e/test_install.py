"""`pip install` as a Python user does it: a wheel built from a copy of this checkout and
installed into a fresh venv (no system site-packages, this checkout not on its path) has
the presets, the bundled text, the `mm-blender` command and the `import mm_blender` API,
and works from any folder.

Nothing is downloaded: pip runs with --no-index. The fresh venv sees its dependencies
(numpy; bpy and its own for the `blender` extra) as the distributions already installed
in the test's environment, each linked into one folder that a .pth file names, so pip
still checks the wheel's declared requirements against them."""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PRESET_NAMES = sorted(p.stem for p in (ROOT / "presets").glob("*.toml"))
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "out", "dist", "build", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis", ".bench",
                                    "*.blend", "*.blend1")


def _run(cmd, *, cwd, timeout=300, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **kw.pop("env", {}))
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _closure(names: list[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions `names` need, with their own requirements (no extras)."""
    seen, todo, out = set(), list(names), []
    while todo:
        req = Requirement(todo.pop())
        key = req.name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(req.name)
        out.append(dist)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(text)
    return out


def _link_distributions(dists, folder: Path) -> None:
    """Link each distribution's top-level files and folders (package, .libs, .dist-info)."""
    folder.mkdir()
    for dist in dists:
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            target = folder / top
            if (base / top).exists() and not target.exists():
                target.symlink_to(base / top)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "checkout"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)   # the build writes build/ and egg-info
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", tmp / "wheels", src], cwd=tmp)
    wheel, = (tmp / "wheels").glob("mm_blender-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp).stdout.strip())
    needs = ["numpy"] + (["bpy"] if _has("bpy") else [])
    _link_distributions(_closure(needs), tmp / "deps")
    (site / "test_deps.pth").write_text(f"{tmp / 'deps'}\n", encoding="utf-8")
    target = f"mm_blender[blender] @ {wheel.as_uri()}" if _has("bpy") else str(wheel)
    _run([python, "-m", "pip", "install", "--no-index", target], cwd=tmp)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return wheel, venv, elsewhere


def _has(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def test_the_wheel_holds_every_preset_once_the_bundled_text_and_the_command(installed):
    wheel, _, _ = installed
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(zf.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
    presets = sorted(n for n in names if n.endswith(".toml"))
    assert presets == [f"mm_blender/presets/{name}.toml" for name in PRESET_NAMES]
    assert "mm_blender/data/default_text.txt" in names
    assert "mm-blender = mm_blender.cli:main" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "presets/", "render_jobs/"))]
    packages = {str(p.parent.relative_to(ROOT)).replace("/", ".")
                for p in (ROOT / "mm_blender").rglob("__init__.py")}
    assert packages <= {n.rsplit("/", 1)[0].replace("/", ".") for n in names}, \
        "a subpackage is missing from [tool.setuptools] packages in pyproject.toml"


def test_mm_blender_presets_lists_every_preset_from_another_folder(installed):
    _, venv, elsewhere = installed
    out = _run([venv / "bin" / "mm-blender", "presets"], cwd=elsewhere).stdout
    listed = sorted(line.split()[0] for line in out.splitlines() if line.startswith("  "))
    assert listed == PRESET_NAMES


def test_mm_blender_check_from_another_folder(installed):
    _, venv, elsewhere = installed
    out = _run([venv / "bin" / "mm-blender", "check", "binary_partition"], cwd=elsewhere).stdout
    expr = tomllib.loads((ROOT / "presets" / "binary_partition.toml").read_text())["expr"]
    assert out.splitlines()[0] == f"binary_partition: {expr}"
    assert "cells:" in out


def test_import_mm_blender_is_the_installed_api(installed):
    _, venv, elsewhere = installed
    probe = ("import json, sys, mm_blender\n"
             "from mm_blender.core import presets\n"
             "from mm_blender.models import sources\n"
             "plan = mm_blender.plan_spec(mm_blender.load_spec('intro_cube'))\n"
             "print(json.dumps({'file': mm_blender.__file__, 'presets': str(presets.PRESETS_DIR),"
             " 'plan': plan.name, 'bpy': 'bpy' in sys.modules,"
             " 'text': sources.default_text(), 'show': callable(mm_blender.show)}))\n")
    got = json.loads(_run([venv / "bin" / "python", "-c", probe], cwd=elsewhere).stdout)
    assert Path(got["file"]).is_relative_to(venv)
    assert Path(got["presets"]).is_relative_to(venv)
    assert got["plan"] == "intro_cube" and got["show"]
    assert not got["bpy"]          # the API plans without Blender; only build/render load it
    assert got["text"] == (ROOT / "mm_blender" / "data" / "default_text.txt").read_text()


@pytest.mark.skipif(not _has("bpy"), reason="the blender extra needs the bpy wheel")
def test_mm_blender_render_with_the_blender_extra(installed, blender_env, tmp_path):
    _, venv, elsewhere = installed
    out = elsewhere / "cube.png"
    env = blender_env(tmp_path)
    _run([venv / "bin" / "mm-blender", "render", "intro_cube", "--out", "cube.png",
          "--resolution", "32x20", "--samples", "1", "--quiet"], cwd=elsewhere,
         env={k: env[k] for k in ("BLENDER_USER_RESOURCES", "BLENDER_USER_EXTENSIONS",
                                  "XDG_CACHE_HOME")})
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[16:24] == (32).to_bytes(4, "big") + \
        (20).to_bytes(4, "big")
