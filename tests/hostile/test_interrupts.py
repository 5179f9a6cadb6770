"""SIGTERM or Ctrl-C (SIGINT) during a render: the half-rendered frames, the per-run Blender
folders and every temp folder are removed, and the old output is left as it was."""
import signal
import time

import pytest

OLD_FRAME = b"\x89PNG\r\n\x1a\n the user's own first frame"
OLD_VIDEO = b"\x00\x00\x00\x08ftyp the user's own video"


def _interrupt_when_rendering(sandbox, proc, sig, timeout=120):
    """Send `sig` once the first frame is in the partial folder (the render is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in sandbox.root.iterdir() if ".partial-" in p.name]
        if partial and any(partial[0].iterdir()):
            proc.send_signal(sig)
            break
        time.sleep(0.05)
    else:
        pytest.fail("the render ended (or never started) before it could be interrupted")
    out, err = proc.communicate(timeout=60)
    from .conftest import Result
    return Result(proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_frame_sequence(sandbox, sig):
    sandbox.write("frames/frame_0001.png", OLD_FRAME)
    proc = sandbox.start("render", "vmprod", "--frames", "1-60", "--out", "frames",
                         "--resolution", "32x20", "--samples", "1", "--quiet")
    result = _interrupt_when_rendering(sandbox, proc, sig)
    sandbox.refused(result, "interrupted", sig.name)


def test_interrupted_video_keeps_the_old_one(sandbox):
    sandbox.write("old.mp4", OLD_VIDEO)
    proc = sandbox.start("render", "vmprod", "--video", "--out", "old.mp4", "--resolution",
                         "32x20", "--samples", "1", "--quiet", "--blend", "old.blend")
    result = _interrupt_when_rendering(sandbox, proc, signal.SIGTERM)
    sandbox.refused(result, "interrupted", "SIGTERM")
