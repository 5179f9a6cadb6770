"""The job scripts run with a plain Python and the bpy wheel (`python render_jobs/X.py ARGS`,
the same scripts as `blender -b -P render_jobs/X.py -- ARGS`): one preset to a PNG, several
presets with a summary line and a README gallery, and a misspelt preset name refused."""

import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "render_jobs"
GALLERY_START, GALLERY_END = "<!-- gallery:start -->", "<!-- gallery:end -->"



def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, its signature and CRC checked."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:16 + length]
    (crc,) = struct.unpack(">I", data[16 + length:20 + length])
    assert zlib.crc32(kind + body) == crc
    return struct.unpack(">II", body[:8])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, blender_env):
    """Every job of this file, started at once (each a fresh interpreter)."""
    tmp = tmp_path_factory.mktemp("render_jobs")
    env = blender_env(tmp)
    readme = tmp / "docs" / "README_copy.md"
    readme.parent.mkdir()
    shutil.copyfile(ROOT / "README.md", readme)
    jobs = {
        "one": [JOBS / "render.py", "intro_cube", "--out", tmp / "x.png",
                "--resolution", "64x40", "--samples", "2"],
        "all": [JOBS / "render_all.py", "--out", tmp / "all", "--only", "intro_cube",
                "identity_mirror", "--resolution", "48x30", "--samples", "1",
                "--gallery", readme],
        "unknown": [JOBS / "render_all.py", "--out", tmp / "none", "--only", "intro_cube",
                    "no_such_preset", "--resolution", "48x30", "--samples", "1"],
    }
    procs = {name: subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in jobs.items()}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results, tmp, readme


def ok(result):
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_render_job_works_like_the_cli(runs):
    results, tmp, _ = runs
    out = ok(results["one"]).stdout
    assert re.search(r"^rendered intro_cube: 2,560 cells, 64x40, 2 samples -> "
                     + re.escape(str((tmp / "x.png").resolve())) + r" \(", out, re.M), out
    assert png_size(tmp / "x.png") == (64, 40)


def test_render_all_renders_each_named_preset(runs):
    results, tmp, _ = runs
    result = ok(results["all"])
    assert re.search(r"^rendered 2 of 2 presets into .+ in \d+ s$", result.stdout, re.M), \
        result.stdout
    assert sorted(p.name for p in (tmp / "all").iterdir()) == \
        ["identity_mirror.png", "intro_cube.png"]
    for name in ("identity_mirror", "intro_cube"):
        assert png_size(tmp / "all" / f"{name}.png") == (48, 30)


def test_gallery_table_links_both_pictures(runs):
    results, tmp, readme = runs
    ok(results["all"])
    original = (ROOT / "README.md").read_text(encoding="utf-8")
    text = readme.read_text(encoding="utf-8")
    # only the section between the markers changed
    head, rest = text.split(GALLERY_START)
    section, tail = rest.split(GALLERY_END)
    assert head == original.split(GALLERY_START)[0]
    assert tail == original.split(GALLERY_END)[1]
    assert "(no pictures yet)" not in section
    lines = section.strip().splitlines()
    assert all(l.startswith("|") and l.endswith("|") for l in lines), section
    assert re.fullmatch(r"\|(-+\|)+", lines[1]), "no table header separator"
    links = dict(re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", section))
    assert sorted(links) == ["identity_mirror", "intro_cube"]
    for name, link in links.items():
        # relative to the README's folder, so the README can be read from anywhere
        assert not Path(link).is_absolute(), link
        assert (readme.parent / link).resolve() == (tmp / "all" / f"{name}.png").resolve()
        assert f"**{name}**" in section


def test_render_all_refuses_an_unknown_preset(runs):
    results, tmp, _ = runs
    result = results["unknown"]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1, result.stderr
    assert "unknown preset" in lines[0] and "'no_such_preset'" in lines[0]
    assert "'intro_cube'" not in lines[0]
    assert not (tmp / "none").exists(), "nothing should be rendered when a name is wrong"
