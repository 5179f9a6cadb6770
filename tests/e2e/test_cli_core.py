"""`python -m mm_blender` as a user runs it (subprocess, no bpy needed): listing presets,
checking one, and user errors as one line on stderr with exit code 2 and no traceback."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "presets"


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", "mm_blender", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every command of this file, started at once (each one is a fresh interpreter)."""
    tmp = tmp_path_factory.mktemp("cli")
    files = {
        "mine": 'expr = "A @ (B @ C)"\n[matrix.A]\nh = 2\nw = 3\n[matrix.B]\nh = 3\nw = 4\n'
                '[matrix.C]\nh = 4\nw = 5\n',
        "bad_expr": 'expr = "A @ @ B"\n',
        "bad_toml": 'expr = "A @ B\n',
        "typo": 'expr = "A @ B"\n[layout]\ngapp = 3\n',
        "mismatch": 'expr = "A @ B"\n[matrix.A]\nh = 2\nw = 3\n[matrix.B]\nh = 4\nw = 5\n',
        "huge": 'expr = "A @ B"\n[matrix.A]\nh = 60000\nw = 60000\n[matrix.B]\nh = 60000\n'
                'w = 60000\n',
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp / f"{name}.toml"
        paths[name].write_text(text, encoding="utf-8")
    commands = {
        "presets": ["presets"],
        "check": ["check", "attention_gaussian"],
        "unknown": ["check", "no_such_preset"],
        "absent": ["check", tmp / "absent.toml"],
        "resolution": ["render", "attention_gaussian", "--resolution", "12",
                       "--out", tmp / "x.png"],
        "no_out": ["render", "attention_gaussian"],
        "bad_command": ["frobnicate"],
        "no_command": [],
        **{name: ["check", path] for name, path in paths.items() if name != "huge"},
        "huge": ["render", paths["huge"], "--out", tmp / "huge.png"],
    }
    procs = {name: _start(*args) for name, args in commands.items()}
    results = {name: _finish(proc) for name, proc in procs.items()}
    return results, paths, tmp


def assert_user_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mm_blender: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_presets_lists_every_file_with_its_description(runs):
    result = runs[0]["presets"]
    assert result.returncode == 0, result.stderr
    files = sorted(PRESETS.glob("*.toml"))
    assert files
    lines = result.stdout.splitlines()
    for path in files:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        description = data.get("description", "")
        assert description, f"{path.name} has no description"
        matching = [l for l in lines if l.split() and l.split()[0] == path.stem]
        assert len(matching) == 1, path.stem
        assert description in matching[0]
    # grouped under [group] headings
    groups = {tomllib.loads(p.read_text(encoding="utf-8")).get("group", "other") for p in files}
    for group in groups:
        assert f"[{group}]" in lines


def test_check_prints_the_tree_with_shapes(runs):
    result = runs[0]["check"]
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0].startswith("attention_gaussian: out = (attn = ")
    for name, shape in [("out", "256x768"), ("attn @ V", "256x64"), ("attn", "256x256"),
                        ("Q", "256x64"), ("K_t", "64x256"), ("V", "256x64"),
                        ("input", "256x768"), ("wQ", "768x64"), ("wK_t", "64x768"),
                        ("input_t", "768x256"), ("wV", "768x64"), ("wO", "64x768")]:
        assert any(f" {name}  {shape}  " in f" {line.lstrip(' │├└─')}" for line in
                   out.splitlines()), name
    assert "softmax(tril(x/sqrt(k)))" in out
    assert "1,114,112" in out
    assert result.stderr == ""


def test_check_a_toml_path(runs):
    result = runs[0]["mine"]
    assert result.returncode == 0, result.stderr
    assert "A @ (B @ C)  2x5  matmul" in result.stdout
    assert "B @ C  3x5  matmul" in result.stdout


def test_unknown_preset(runs):
    assert_user_error(runs[0]["unknown"], "unknown preset", "'no_such_preset'")


def test_missing_toml_file(runs):
    assert_user_error(runs[0]["absent"], "does not exist", "absent.toml")


def test_malformed_expression(runs):
    results, paths, _ = runs
    assert_user_error(results["bad_expr"], str(paths["bad_expr"]), "column 5",
                      "expected a matrix name")


def test_malformed_toml(runs):
    results, paths, _ = runs
    assert_user_error(results["bad_toml"], str(paths["bad_toml"]), "not valid TOML")


def test_unknown_key(runs):
    results, paths, _ = runs
    assert_user_error(results["typo"], str(paths["typo"]), "[layout]", "unknown key 'gapp'")


def test_shape_mismatch(runs):
    results, paths, _ = runs
    assert_user_error(results["mismatch"], str(paths["mismatch"]), "shape mismatch", "'A'",
                      "'B'", "2x3", "4x5")


def test_scene_too_large_for_memory(runs):
    results, paths, tmp = runs
    assert_user_error(results["huge"], str(paths["huge"]), "10,800,000,000 cells", "GiB",
                      "memory")
    assert not (tmp / "huge.png").exists()


def test_render_bad_resolution(runs):
    results, _, tmp = runs
    line = assert_user_error(results["resolution"], "resolution", "'12'")
    assert "WIDTHxHEIGHT" in line
    assert not (tmp / "x.png").exists()


@pytest.mark.parametrize("name, words", [
    ("no_out", ["--out"]),
    ("bad_command", ["frobnicate"]),
    ("no_command", ["command"]),
])
def test_bad_arguments(runs, name, words):
    assert_user_error(runs[0][name], *words)
