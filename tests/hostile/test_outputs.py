"""The outputs module on its own: every verifier refuses a cut-short file of its type, and an
atomic write that fails leaves the old file and no temporary behind."""
import io
import os

import numpy as np
import pytest

from mm_blender import outputs
from mm_blender.errors import MMError


def _png(tmp_path):
    import bpy
    img = bpy.data.images.new("probe", 4, 4)
    img.filepath_raw = str(tmp_path / "probe.png")
    img.file_format = "PNG"
    img.save()
    bpy.data.images.remove(img)
    return (tmp_path / "probe.png").read_bytes()


def _npz():
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(1000.0))
    return buf.getvalue()


def _mp4():   # ftyp, then an mdat and a moov box
    box = lambda kind, body: (8 + len(body)).to_bytes(4, "big") + kind + body  # noqa: E731
    return box(b"ftyp", b"isom" + bytes(8)) + box(b"mdat", bytes(100)) + box(b"moov", bytes(50))


def _blend(tmp_path):
    import bpy
    path = tmp_path / "probe.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    return path.read_bytes()


@pytest.mark.parametrize("suffix", [".png", ".npz", ".mp4", ".blend"])
def test_verifiers_refuse_cut_files(tmp_path, suffix):
    whole = {".png": lambda: _png(tmp_path), ".npz": _npz, ".mp4": _mp4,
             ".blend": lambda: _blend(tmp_path)}[suffix]()
    good, cut = tmp_path / f"good{suffix}", tmp_path / f"cut{suffix}"
    good.write_bytes(whole)
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    import bpy
    libraries = len(bpy.data.libraries)
    check = outputs.verifier(good)
    check(good)
    assert len(bpy.data.libraries) == libraries   # the .blend's reopen links nothing
    with pytest.raises(MMError, match="incomplete"):
        check(cut)


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.npz"
    target.write_bytes(b"old")
    with pytest.raises(MMError, match="cannot write capture .*x.npz.*unchanged"):
        with outputs.atomic(target, what="capture") as tmp:
            tmp.write_bytes(_npz()[:100])   # cut short, as a full disk would
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.npz"]
    with pytest.raises(ValueError):
        with outputs.atomic(target) as tmp:   # any error in the block: nothing moved
            tmp.write_bytes(_npz())
            raise ValueError("the work failed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.npz"]
    outputs.write_bytes(tmp_path / "p.toml", b'expr = "A @ B"\n')
    assert (tmp_path / "p.toml").read_bytes() == b'expr = "A @ B"\n'
