"""show() without Blender: one clear error naming the missing bpy module (no traceback from
deep inside), and bad arguments refused before anything is imported or built."""
import importlib.util
import struct
import zlib

import pytest

import mm_blender
from mm_blender import notebook
from mm_blender.errors import MMError


def test_show_without_bpy_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(notebook.importlib.util, "find_spec",
                        lambda name, *a: None if name == "bpy" else real(name, *a))
    with pytest.raises(MMError, match=r"pip install 'mm_blender\[blender\]'"):
        mm_blender.show("intro_cube", resolution=(16, 10), samples=1)


@pytest.mark.parametrize("resolution", ["16", "0x10", (16,), "axb", (16, 20000)])
def test_bad_resolutions_are_refused(resolution):
    with pytest.raises(MMError, match="resolution"):
        mm_blender.show("intro_cube", resolution=resolution)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_picture_is_a_png_with_its_size():
    ihdr = struct.pack(">IIBBBBB", 5, 3, 8, 2, 0, 0, 0)          # 5x3 RGB, 8 bits
    pixels = zlib.compress((b"\x00" + bytes(3 * 5)) * 3)
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", pixels)
           + _chunk(b"IEND", b""))
    picture = mm_blender.Picture(png, "tiny")
    assert picture.size == (5, 3) and picture._repr_png_() is png


@pytest.mark.parametrize("samples", [0, 70000, 2.5, "16", True])
def test_bad_samples_are_refused(samples):
    with pytest.raises(MMError, match="samples"):
        mm_blender.show("intro_cube", resolution=(16, 10), samples=samples)
