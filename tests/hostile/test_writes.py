"""Writes that fail after the work: a full disk (a file size limit, as `ulimit -f`), an output
type refused only after a .blend was overwritten, a file this user may not replace, outputs
that are folders or FIFOs. Every output is checked before any work and written through a
verified temporary file, so the user's old file is always left as it was."""
import os
import resource
import shutil
import subprocess

import pytest

OLD_BLEND = b"BLENDER-v500 the user's own scene, not to be lost" * 50
OLD_PNG = b"\x89PNG\r\n\x1a\n the user's own picture" * 50
OLD_NPZ = b"PK\x03\x04 the user's own capture" * 50
LIMIT = 2048   # bytes any file of the run may grow to: every output is bigger


def small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory, server):
    """The three commands under a file size limit, run at once (each is a process of its
    own: the limit, and the SIGXFSZ it raises, are per process)."""
    from .conftest import Sandbox
    boxes, procs = {}, {}
    commands = {
        "build": ["build", "intro_cube", "--blend", "old.blend", "--quiet"],
        "render": ["render", "intro_cube", "--out", "old.png", "--resolution", "64x40",
                   "--samples", "1", "--quiet"],
        "render_blend": ["render", "intro_cube", "--out", "new.png", "--blend", "old.blend",
                         "--resolution", "64x40", "--samples", "1", "--quiet"],
        "capture": ["capture", "--model", "minilm", "--layer", "0", "--head", "0",
                    "--tokens", "8", "--out", "old.npz", "--quiet"],
        "video": ["render", "vmprod", "--video", "--frames", "1-6", "--out", "old.mp4",
                  "--resolution", "128x80", "--samples", "1", "--quiet"],   # ~4 kB
        "frames": ["render", "vmprod", "--frames", "1-2", "--out", "frames", "--resolution",
                   "64x40", "--samples", "1", "--quiet"],
        # 40 leaves: a preset of several kB
        "import": ["import-mm", '{"expr": "' + " @ ".join(f"M{i}" for i in range(40)) + '"}',
                   "-o", "old.toml"],
    }
    for name, args in commands.items():
        root = tmp_path_factory.mktemp(f"full_{name}")
        (root / "user").mkdir()
        (root / "temp").mkdir()
        box = Sandbox(root / "user", server, root / "temp")
        box.write("old.blend", OLD_BLEND)
        box.write("old.png", OLD_PNG)
        box.write("old.npz", OLD_NPZ)
        box.write("old.mp4", b"\x00\x00\x00\x08ftyp the user's own video")
        box.write("old.toml", 'expr = "A @ B"  # the user\'s own preset\n')
        box.write("frames/frame_0001.png", OLD_PNG)
        boxes[name] = box
        procs[name] = box.start(*args, preexec_fn=small_files)
    results = {}
    from .conftest import Result
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = Result(proc.returncode, out, err)
    return boxes, results


@pytest.mark.parametrize("name, words", [
    ("build", ["old.blend", "unchanged"]),
    ("render", ["old.png", "unchanged"]),
    ("render_blend", ["new.png", "unchanged"]),
    ("capture", ["old.npz", "unchanged"]),
    ("video", ["old.mp4", "unchanged"]),
    ("frames", ["frames", "nothing was moved"]),
    ("import", ["old.toml", "unchanged"]),
])
def test_full_disk_keeps_the_old_file(full_disk, name, words):
    boxes, results = full_disk
    boxes[name].refused(results[name], *words)


def test_bmp_is_refused_before_the_blend_is_touched(sandbox):
    sandbox.write("existing.blend", OLD_BLEND)
    result = sandbox.cli("render", "intro_cube", "--out", "x.bmp", "--blend", "existing.blend")
    sandbox.refused(result, "x.bmp", ".png")


@pytest.mark.parametrize("args, words", [
    (["build", "intro_cube", "--blend", "scene.txt"], ["scene.txt", ".blend"]),
    (["render", "intro_cube", "--out", "folder.png"], ["folder.png", "a folder"]),
    (["render", "intro_cube", "--out", "pipe.png"], ["pipe.png", "FIFO"]),
    (["render", "intro_cube", "--out", "x.png", "--blend", "pipe.blend"], ["pipe.blend", "FIFO"]),
    (["render", "intro_cube", "--out", "missing/x.png"], ["missing", "does not exist"]),
    (["render", "vmprod", "--frames", "1-2", "--out", "old.png"], ["old.png", "not a folder"]),
    (["render", "vmprod", "--video", "--out", "folder.mp4"], ["folder.mp4", "a folder"]),
    (["capture", "--model", "minilm", "--layer", "0", "--head", "0", "--out", "pipe.npz"],
     ["pipe.npz", "FIFO"]),
    (["import-mm", "A @ B", "--output", "folder.toml"], ["folder.toml", "a folder"]),
    (["import-mm", '{"expr": "A @ B"}', "--output", "x.png"], ["x.png", ".toml"]),
    (["render", "intro_cube", "--out", "same.png", "--blend", "same.png"], [".blend"]),
])
def test_outputs_checked_before_any_work(sandbox, args, words):
    sandbox.write("old.png", OLD_PNG)
    for name in ("folder.png", "folder.mp4", "folder.toml"):
        sandbox.path(name).mkdir()
    for name in ("pipe.png", "pipe.blend", "pipe.npz"):
        os.mkfifo(sandbox.path(name))
    sandbox.refused(sandbox.cli(*args), *words)


def _read_only(path):
    """A file this user may not replace: immutable for root (who may write anything), else
    read-only."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("root, and this file system cannot make a file immutable")
        return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)
    path.chmod(0o444)
    return lambda: path.chmod(0o644)


@pytest.mark.parametrize("args, name", [
    (["render", "intro_cube", "--out", "locked.png"], "locked.png"),
    (["build", "intro_cube", "--blend", "locked.blend"], "locked.blend"),
    (["import-mm", '{"expr": "A @ B"}', "--output", "locked.toml"], "locked.toml"),
])
def test_a_file_the_user_may_not_replace(sandbox, args, name):
    path = sandbox.write(name, OLD_PNG)
    undo = _read_only(path)
    try:
        sandbox.refused(sandbox.cli(*args), name, "may not replace")
    finally:
        undo()
