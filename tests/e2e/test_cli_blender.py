"""`python -m mm_blender build` and `render` as a user runs them (bpy wheel, each command a
fresh interpreter): the saved .blend read back by a plain bpy that never imports mm_blender,
the PNG, PNG-sequence and MP4 outputs decoded, and user errors that exit 2 with one line
before anything is written."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Reads outputs back with nothing but bpy and numpy, prints one JSON line; arrays go to an .npz.
# `blend PATH NPZ`: open the file, list its collections, frame range and matrix objects.
# `media NPZ PATH...`: per PNG its size and pixels, per MP4 its size and frame count.
PROBE = r'''
import json, sys
import numpy as np
import bpy

kind, args = sys.argv[1], sys.argv[2:]
out, arrays = {}, {}
if kind == "blend":
    path, npz = args
    bpy.ops.wm.open_mainfile(filepath=path)
    scene = bpy.context.scene
    out["collections"] = [c.name for c in bpy.data.collections]
    out["frames"] = [scene.frame_start, scene.frame_end]
    out["matrices"] = []
    for n, obj in enumerate(o for o in bpy.data.objects if o.get("mm_role") in ("leaf", "result")):
        mesh = obj.data
        values = np.empty(len(mesh.vertices), np.float32)
        mesh.attributes["value"].data.foreach_get("value", values)
        arrays[f"m{n}"] = values
        info = {k: obj.get(k) for k in ("mm_role", "mm_name", "mm_rows", "mm_cols",
                                        "mm_left", "mm_right")}
        info.update(object=obj.name, array=f"m{n}",
                    collections=[c.name for c in obj.users_collection])
        out["matrices"].append(info)
else:
    npz, *paths = args
    for n, path in enumerate(paths):
        if path.endswith(".mp4"):
            clip = bpy.data.movieclips.load(path)
            out[path] = {"size": list(clip.size), "frames": clip.frame_duration}
        else:
            img = bpy.data.images.load(path)
            px = np.empty(len(img.pixels), np.float32)
            img.pixels.foreach_get(px)
            arrays[f"p{n}"] = px.reshape(img.size[1], img.size[0], 4)
            out[path] = {"size": list(img.size), "array": f"p{n}"}
np.savez(npz, **arrays)
out["mm_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "mm_blender")
print("PROBE " + json.dumps(out))
'''

# Where a saved build's cells land in a W x H picture: the build's camera refitted for that
# aspect ratio as `render` does (so this one imports mm_blender's camera), every matrix's
# points projected through it. Prints one JSON line; pixel (x, y) per point, bottom row
# first like Image.pixels.
PROJECT = r'''
import json, sys
import numpy as np
import bpy
from mm_blender.scene.camera import refit

path, npz, size = sys.argv[1:]
w, h = (int(v) for v in size.split("x"))
bpy.ops.wm.open_mainfile(filepath=path)
scene = bpy.context.scene
scene.render.resolution_x, scene.render.resolution_y = w, h
scene.render.resolution_percentage = 100
cam = scene.camera
assert refit(cam, scene)
dg = bpy.context.evaluated_depsgraph_get()
to_clip = np.array(cam.calc_matrix_camera(dg, x=w, y=h)) @ np.array(cam.matrix_world.inverted())
out, arrays = {"shapes": {}}, {}
for obj in (o for o in bpy.data.objects if o.get("mm_role") in ("leaf", "result")):
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    values = np.empty(len(mesh.vertices), np.float32)
    mesh.attributes["value"].data.foreach_get("value", values)
    world = np.array(obj.matrix_world) @ np.c_[co.reshape(-1, 3), np.ones(len(values))].T
    clip = to_clip @ world
    ndc = clip[:2] / clip[3]
    x = np.round((ndc[0] + 1) / 2 * (w - 1)).astype(int)
    y = np.round((ndc[1] + 1) / 2 * (h - 1)).astype(int)
    arrays[obj["mm_name"] + ":xy"] = np.stack([x, y], axis=1)
    arrays[obj["mm_name"] + ":values"] = values
    out["shapes"][obj["mm_name"]] = [obj["mm_rows"], obj["mm_cols"]]
np.savez(npz, **arrays)
print("PROBE " + json.dumps(out))
'''

LOPSIDED = """name = "lopsided"
expr = "L @ R"
seed = 11
[matrix.L]
h = 6
w = 4
init = "gaussian"
[matrix.R]
h = 4
w = 9
init = "uniform"
min = -1.0
max = 2.0
"""


def _start(env, args, cwd=ROOT):
    return subprocess.Popen([sys.executable, *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


ERRORS = {   # name: (arguments with {dir} for an empty folder of its own, words on stderr)
    "unwritable": (["render", "intro_cube", "--out", "/nonexistent/x.png"],
                   ["'/nonexistent'", "does not exist"]),
    "zero_resolution": (["render", "intro_cube", "--out", "{dir}/x.png", "--resolution", "0x0"],
                        ["'0x0'", "resolution"]),
    "backwards_frames": (["render", "vmprod", "--out", "{dir}", "--frames", "5-2"],
                         ["'5-2'", "frame range"]),
    "video_to_png": (["render", "vmprod", "--video", "--out", "{dir}/v.png"],
                     ["--video", ".mp4", "'v.png'"]),
    "odd_video_size": (["render", "vmprod", "--video", "--out", "{dir}/v.mp4",
                        "--resolution", "63x40"], ["'63x40'", "even"]),
    "unknown_preset": (["build", "no_such_preset", "--blend", "{dir}/x.blend"],
                       ["unknown preset", "'no_such_preset'"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, blender_env):
    """Every command of this file, started at once; then the probes of their outputs."""
    tmp = tmp_path_factory.mktemp("cli_blender")
    out = tmp / "out"
    out.mkdir()
    env = blender_env(tmp)
    mm = ["-m", "mm_blender"]
    (tmp / "lopsided.toml").write_text(LOPSIDED)    # a product whose result is not symmetric
    commands = {
        "build": ["build", "intro_cube", "--blend", out / "intro_cube.blend"],
        "lopsided": ["build", tmp / "lopsided.toml", "--blend", out / "lopsided.blend",
                     "--quiet"],
        "still": ["render", "intro_cube", "--out", out / "x.png", "--resolution", "64x40",
                  "--samples", "2"],
        "video": ["render", "vmprod", "--video", "--out", out / "v.mp4", "--resolution",
                  "64x40", "--samples", "1", "--quiet"],
        "vmprod_blend": ["build", "vmprod", "--blend", out / "vmprod.blend", "--quiet"],
        "frames": ["render", "vmprod", "--frames", "2-3", "--out", out / "frames",
                   "--resolution", "64x40", "--samples", "1", "--quiet"],
    }
    error_dirs = {}
    for name, (args, _) in ERRORS.items():
        error_dirs[name] = tmp / "errors" / name
        error_dirs[name].mkdir(parents=True)
        commands[name] = [a.replace("{dir}", str(error_dirs[name])) for a in args]
    procs = {name: _start(env, mm + args) for name, args in commands.items()}
    results = {name: _finish(proc) for name, proc in procs.items()}

    # the probes run outside the repository, so mm_blender could not even be imported there
    probe_dir = tmp / "probe"
    probe_dir.mkdir()
    media = [out / "x.png", out / "frames" / "frame_0002.png",
             out / "frames" / "frame_0003.png", out / "v.mp4"]
    probes = {
        "intro_cube": ["blend", out / "intro_cube.blend", probe_dir / "intro_cube.npz"],
        "vmprod": ["blend", out / "vmprod.blend", probe_dir / "vmprod.npz"],
        "lopsided": ["blend", out / "lopsided.blend", probe_dir / "lopsided.npz"],
        "media": ["media", probe_dir / "media.npz", *[p for p in media if p.is_file()]],
    }
    procs = {name: _start(env, ["-c", PROBE, *args], cwd=probe_dir)
             for name, args in probes.items()}
    probes["projected"] = [out / "intro_cube.blend", probe_dir / "projected.npz", "64x40"]
    procs["projected"] = _start(env, ["-c", PROJECT, *probes["projected"]], cwd=ROOT)
    probed = {}
    for name, proc in procs.items():
        result = _finish(proc)
        lines = [l for l in result.stdout.splitlines() if l.startswith("PROBE ")]
        if result.returncode == 0 and len(lines) == 1:
            info = json.loads(lines[0][len("PROBE "):])
            info.setdefault("mm_modules", [])       # the projection may import mm_blender
            with np.load(probes[name][1 if name in ("media", "projected") else 2]) as npz:
                info["arrays"] = {k: npz[k] for k in npz.files}
            probed[name] = info
        else:
            probed[name] = {"failed": result.stderr[-3000:]}
    return results, probed, out, error_dirs


def ok(result):
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def probe(probed, name):
    info = probed[name]
    assert "failed" not in info, info.get("failed")
    assert info["mm_modules"] == [], "the probe imported mm_blender"
    return info


def summary(result, pattern):
    lines = [l for l in result.stdout.splitlines() if re.fullmatch(pattern, l)]
    assert len(lines) == 1, result.stdout
    return re.fullmatch(pattern, lines[0])


# --- build ----------------------------------------------------------------------------------------

def test_build_prints_a_summary_line(runs):
    results, _, out, _ = runs
    m = summary(ok(results["build"]), r"built intro_cube: ([\d,]+) cells -> (.+) \(\d+\.\d s\)")
    assert m.group(1) == f"{32 * 24 + 24 * 32 + 32 * 32:,}"
    assert Path(m.group(2)) == (out / "intro_cube.blend").resolve()


def test_saved_blend_opens_without_mm_blender(runs):
    results, probed, _, _ = runs
    ok(results["build"])
    info = probe(probed, "intro_cube")
    assert "intro_cube" in info["collections"]
    by_name = {m["mm_name"]: m for m in info["matrices"]}
    assert sorted(by_name) == ["L", "L @ R", "R"]
    assert len(info["matrices"]) == 3
    for name, role, shape in [("L", "leaf", (32, 24)), ("R", "leaf", (24, 32)),
                              ("L @ R", "result", (32, 32))]:
        m = by_name[name]
        assert m["mm_role"] == role
        assert (m["mm_rows"], m["mm_cols"]) == shape
        assert "intro_cube" in m["collections"]
    result = by_name["L @ R"]
    assert result["mm_left"] == by_name["L"]["object"]
    assert result["mm_right"] == by_name["R"]["object"]


def test_saved_result_is_left_at_right(runs):
    _, probed, _, _ = runs
    info = probe(probed, "intro_cube")
    by_name = {m["mm_name"]: m for m in info["matrices"]}

    def values(name):
        m = by_name[name]
        v = info["arrays"][m["array"]]
        assert v.dtype == np.float32 and v.size == m["mm_rows"] * m["mm_cols"]
        return v.reshape(m["mm_rows"], m["mm_cols"])   # row-major: point i * cols + j

    left, right, result = values("L"), values("R"), values("L @ R")
    # the preset's formulas: L = -2 * (trunc(i / 8) % 2) + 1, R the same along j
    i, j = np.indices((32, 24))
    assert np.array_equal(left, (-2 * ((i // 8) % 2) + 1).astype(np.float32))
    i, j = np.indices((24, 32))
    assert np.array_equal(right, (-2 * ((j // 8) % 2) + 1).astype(np.float32))
    expected = (left @ right).astype(np.float32)
    assert np.array_equal(result, expected)
    assert np.abs(expected).max() == 24


def test_saved_lopsided_result_is_left_at_right(runs):
    """intro_cube's result is symmetric, so a transposed result would pass above: here
    random 6x4 and 4x9 arguments, checked with numpy."""
    results, probed, _, _ = runs
    ok(results["lopsided"])
    info = probe(probed, "lopsided")
    by_name = {m["mm_name"]: m for m in info["matrices"]}
    assert {k: (m["mm_rows"], m["mm_cols"]) for k, m in by_name.items()} == \
        {"L": (6, 4), "R": (4, 9), "L @ R": (6, 9)}
    left, right, result = (info["arrays"][by_name[k]["array"]].reshape(by_name[k]["mm_rows"],
                                                                       by_name[k]["mm_cols"])
                           for k in ("L", "R", "L @ R"))
    assert left.std() > 0.1 and right.min() < 0 < right.max()
    np.testing.assert_allclose(result, left.astype(np.float64) @ right, rtol=1e-5, atol=1e-5)


# --- render: a still, a video, a PNG sequence ------------------------------------------------------

def test_render_still_writes_a_picture(runs):
    results, probed, out, _ = runs
    m = summary(ok(results["still"]),
                r"rendered intro_cube: 2,560 cells, 64x40, 2 samples -> (.+) \(\d+\.\d s\)")
    assert Path(m.group(1)) == (out / "x.png").resolve()
    media = probe(probed, "media")
    image = media[str(out / "x.png")]
    assert image["size"] == [64, 40]
    px = media["arrays"][image["array"]]
    assert px.shape == (40, 64, 4)
    rgb = px[..., :3]
    assert rgb.std(axis=(0, 1)).min() > 0.05, "the picture is (nearly) uniform"
    # both signs are drawn: mm colours positive values blue/cyan and negative ones red
    r, b = rgb[..., 0], rgb[..., 2]
    assert (b > r + 0.15).sum() >= 20
    assert (r > b + 0.15).sum() >= 20
    # and each where it belongs: blue where a positive cell projects, red where a negative
    # one does (cells in the middle of intro_cube's bands of 8, so pixels don't mix signs)
    projected = probe(probed, "projected")
    assert sorted(projected["shapes"]) == ["L", "L @ R", "R"]
    for name, (rows, cols) in projected["shapes"].items():
        xy = projected["arrays"][name + ":xy"].reshape(rows, cols, 2)
        values = projected["arrays"][name + ":values"].reshape(rows, cols)
        inner = (np.arange(rows) % 8 >= 2) & (np.arange(rows) % 8 <= 5)
        inner = inner[:, None] & ((np.arange(cols) % 8 >= 2) & (np.arange(cols) % 8 <= 5))[None]
        x, y = xy[inner][:, 0], xy[inner][:, 1]
        inside = (x >= 0) & (x < 64) & (y >= 0) & (y < 40)
        seen = rgb[y[inside], x[inside]]
        sign = values[inner][inside]
        # round cells leave background between them at this size: judge the pixels a cell
        # colours, and ask that most projected cells land on one
        coloured = np.abs(seen[:, 2] - seen[:, 0]) > 0.05
        agree = np.where(sign > 0, seen[:, 2] > seen[:, 0], seen[:, 0] > seen[:, 2])[coloured]
        assert inside.sum() >= 50 and coloured.mean() >= 0.5 and agree.mean() >= 0.7, \
            (name, inside.sum(), coloured.mean(), agree.mean())


def test_render_video_has_one_frame_per_animation_frame(runs):
    results, probed, out, _ = runs
    ok(results["video"])
    ok(results["vmprod_blend"])
    start, end = probe(probed, "vmprod")["frames"]
    assert end - start + 1 > 3, "vmprod's sweep should span many frames"
    video = probe(probed, "media")[str(out / "v.mp4")]
    assert video["size"] == [64, 40]
    assert video["frames"] == end - start + 1


def test_render_frames_writes_exactly_that_range(runs):
    results, probed, out, _ = runs
    ok(results["frames"])
    assert sorted(p.name for p in (out / "frames").iterdir()) == \
        ["frame_0002.png", "frame_0003.png"]
    media = probe(probed, "media")
    a, b = (media["arrays"][media[str(out / "frames" / name)]["array"]]
            for name in ("frame_0002.png", "frame_0003.png"))
    assert a.shape == b.shape == (40, 64, 4)
    assert a[..., :3].std() > 0.05 and b[..., :3].std() > 0.05
    moved = np.abs(a - b).max(axis=2) > 0.05
    assert moved.sum() >= 10, "the sweep did not move between frames 2 and 3"


def test_no_partial_files_are_left(runs):
    _, _, out, _ = runs
    hidden = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert hidden == []


# --- user errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ERRORS))
def test_user_error_exits_2_and_writes_nothing(runs, name):
    results, _, _, error_dirs = runs
    result = results[name]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mm_blender: error: ")
    for word in ERRORS[name][1]:
        assert word in lines[0], lines[0]
    assert list(error_dirs[name].iterdir()) == []
    assert not Path("/nonexistent").exists()
