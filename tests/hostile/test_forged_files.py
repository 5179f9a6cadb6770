"""Forged weight and data files: safetensors headers (overflowing, huge or float shapes,
deeply nested JSON), GGUF files (alignment 0, deeply nested array metadata), capture .npz
files with wrong-typed fields, and an array far larger than its leaf. Each is refused from
its header, before its data is trusted or loaded."""
import json
import struct
import zipfile

import numpy as np
import pytest

LEAF = ('[matrix.A]\ninit = "file"\nh = 4\nw = 4\nfile = "{file}"\n'
        '[matrix.B]\nh = 4\nw = 4\n')


def safetensors(header) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(64)


def entry(shape, dtype="F32", offsets=(0, 64)):
    return {"a": {"dtype": dtype, "shape": shape, "data_offsets": list(offsets)}}


FORGED_SAFETENSORS = {
    "overflowing shape": (entry([2**62, 2**62]), "elements"),
    "huge shape": (entry([1 << 31, 1 << 31, 1 << 31]), "elements"),
    "plausible huge shape": (entry([65536, 65536]), "offsets do not match"),
    "float shape": (entry([4.0, 4.0]), "whole numbers"),
    "negative shape": (entry([-4, -4]), "whole numbers"),
    "string shape": (entry("4x4"), "whole numbers"),
    "float offsets": (entry([4, 4], offsets=(0.0, 64.0)), "data_offsets"),
    "nested JSON": (b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}", "nests more than"),
    "entry not a table": ({"a": [1, 2]}, "not a table"),
}


@pytest.mark.parametrize("case", FORGED_SAFETENSORS)
def test_forged_safetensors_leaf(sandbox, case):
    header, words = FORGED_SAFETENSORS[case]
    sandbox.write("w.safetensors", safetensors(header))
    sandbox.write("p.toml", 'expr = "A @ B"\n' + LEAF.format(file="w.safetensors"))
    sandbox.write("old.blend", b"BLENDER-old")
    sandbox.refused(sandbox.cli("check", "p.toml"), "w.safetensors", words)
    sandbox.refused(sandbox.cli("build", "p.toml", "--blend", "old.blend"), words)


@pytest.mark.parametrize("case", ["overflowing shape", "float shape", "nested JSON"])
def test_forged_safetensors_model(sandbox, case):
    header, words = FORGED_SAFETENSORS[case]
    sandbox.write("model.safetensors", safetensors(header))
    sandbox.write("old.npz", b"PK-old capture")
    result = sandbox.cli("capture", "--model", "model.safetensors", "--layer", "0", "--head",
                         "0", "--out", "old.npz")
    sandbox.refused(result, "model.safetensors", words)


def gguf(*kvs: bytes) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs)


def key(name: str) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode()


FORGED_GGUF = {
    "alignment 0": (key("general.alignment") + struct.pack("<II", 4, 0), "alignment"),
    "alignment as text": (key("general.alignment") + struct.pack("<I", 8) + key("32"),
                          "alignment"),
    "nested arrays": (key("tokenizer.nested") + struct.pack("<I", 9)
                      + struct.pack("<IQ", 9, 1) * 100000 + struct.pack("<IQ", 4, 0),
                      "nest more than"),
}


@pytest.mark.parametrize("case", FORGED_GGUF)
def test_forged_gguf_model(sandbox, case):
    kv, words = FORGED_GGUF[case]
    sandbox.write("m.gguf", gguf(kv))
    sandbox.write("p.toml", 'expr = "Q @ K_t"\n[matrix.Q]\ninit = "model"\nh = 4\nw = 2\n'
                  '[matrix.K_t]\ninit = "model"\nh = 2\nw = 4\n[model]\nmodel = "m.gguf"\n')
    sandbox.refused(sandbox.cli("check", "p.toml"), "m.gguf", words)
    sandbox.write("old.npz", b"PK-old capture")
    sandbox.freeze()
    result = sandbox.cli("capture", "--model", "m.gguf", "--layer", "0", "--head", "0",
                         "--out", "old.npz")
    sandbox.refused(result, "m.gguf", words)


# --- captures ------------------------------------------------------------------------------

def capture_arrays(t=4, d=6, hd=2, kind=np.float32):
    shapes = dict(input=(t, d), wQ=(d, hd), wK=(d, hd), wV=(d, hd), bQ=(hd,), bK=(hd,),
                  bV=(hd,), wO=(hd, d), bO=(d,), Q=(t, hd), K=(t, hd), V=(t, hd),
                  attn=(t, t), head_out=(t, hd), out=(t, d))
    return {k: np.ones(s, kind) for k, s in shapes.items()}


def write_capture(path, meta_changes=None, array_changes=None):
    meta = dict(format="mm_blender.capture", version=1, model="forged", layer=0, head=0,
                causal=True, text="a b c d", tokens=["a", "b", "c", "d"], info={})
    meta.update(meta_changes or {})
    arrays = capture_arrays()
    arrays.update(array_changes or {})
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


CAPTURE_PRESET = ('expr = "Q @ K_t"\n[matrix.Q]\ninit = "model"\nh = 4\nw = 2\n'
                  '[matrix.K_t]\ninit = "model"\nh = 2\nw = 4\n[model]\ncapture = "cap.npz"\n')


def test_a_well_formed_capture_passes(sandbox):   # the control for the forged ones below
    write_capture(sandbox.path("cap.npz"))
    sandbox.write("p.toml", CAPTURE_PRESET)
    result = sandbox.cli("check", "p.toml")
    assert result.returncode == 0, result.stderr


FORGED_CAPTURES = {
    "layer is text": ({"layer": "abc"}, None, "'layer' should be a whole number"),
    "layer is true": ({"layer": True}, None, "'layer' should be a whole number"),
    "tokens is a number": ({"tokens": 5}, None, "'tokens' should be list"),
    "tokens hold numbers": ({"tokens": [1, 2, 3, 4]}, None, "list of strings"),
    "model is a table": ({"model": {"x": 1}}, None, "'model' should be str"),
    "string array": (None, {"Q": np.array([["a", "b"]] * 4)}, "'Q' holds <U1 values"),
    "numeric strings": (None, {"attn": np.full((4, 4), "1.5")}, "'attn' holds"),
    "3-D array": (None, {"attn": np.ones((4, 4, 4), np.float32)}, "'attn' has shape"),
}


@pytest.mark.parametrize("case", FORGED_CAPTURES)
def test_forged_capture(sandbox, case):
    meta, arrays, words = FORGED_CAPTURES[case]
    write_capture(sandbox.path("cap.npz"), meta, arrays)
    sandbox.write("p.toml", CAPTURE_PRESET)
    sandbox.refused(sandbox.cli("check", "p.toml"), "cap.npz", words)


def big_npz(path, shape=(8192, 8192)):
    """A small file (~0.3 MB) holding an 8192 x 8192 array (64 MB once loaded)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("a.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "|u1", "fortran_order": False, "shape": shape})
            chunk = bytes(1 << 22)
            for _ in range(shape[0] * shape[1] // len(chunk)):
                f.write(chunk)


def test_big_array_for_a_small_leaf_is_refused_from_its_header(sandbox, monkeypatch):
    big_npz(sandbox.path("big.npz"))
    assert sandbox.path("big.npz").stat().st_size < 1 << 20
    sandbox.write("p.toml", 'expr = "A @ B"\n' + LEAF.format(file="big.npz"))
    sandbox.write("old.blend", b"BLENDER-old")

    def no_loading(*args, **kwargs):
        raise AssertionError("the array was loaded before its shape was checked")

    monkeypatch.setattr(np, "load", no_loading)
    sandbox.refused(sandbox.cli("check", "p.toml"), "8192 x 8192", "4 x 4")
    sandbox.refused(sandbox.cli("build", "p.toml", "--blend", "old.blend"), "8192 x 8192")


def test_big_npy_for_a_small_leaf_is_refused_from_its_header(sandbox, monkeypatch):
    with open(sandbox.path("big.npy"), "wb") as f:   # the header, then a sparse 64 MB
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (8192, 8192)})
        f.truncate(f.tell() + 8192 * 8192)
    sandbox.write("p.toml", 'expr = "A @ B"\n' + LEAF.format(file="big.npy"))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("loaded before checked"))
    sandbox.refused(sandbox.cli("check", "p.toml"), "8192 x 8192")


def test_deeply_nested_model_config(sandbox):
    sandbox.write("model/config.json", "[" * 100000 + "]" * 100000)
    sandbox.write("model/model.safetensors", safetensors({}))
    sandbox.write("old.npz", b"PK-old capture")
    result = sandbox.cli("capture", "--model", "model", "--layer", "0", "--head", "0",
                         "--out", "old.npz")
    sandbox.refused(result, "config.json", "nests more than")


def test_a_fifo_as_the_model(sandbox):
    import os
    os.mkfifo(sandbox.path("weights.safetensors"))
    result = sandbox.cli("capture", "--model", "weights.safetensors", "--layer", "0",
                         "--head", "0", "--out", "new.npz")
    sandbox.refused(result, "weights.safetensors", "a FIFO (named pipe)")


def test_a_huge_csv_for_a_small_leaf(sandbox, monkeypatch):
    from mm_blender.core import initialisers
    monkeypatch.setattr(initialisers, "URL_MAX_BYTES", 1 << 16)   # a 64 kB floor, for speed
    with open(sandbox.path("big.csv"), "wb") as f:
        f.write(b"1,2,3,4\n")
        f.truncate(1 << 20)   # 1 MB (sparse): far more than a 4 x 4 leaf can use
    sandbox.write("p.toml", 'expr = "A @ B"\n' + LEAF.format(file="big.csv"))
    sandbox.refused(sandbox.cli("check", "p.toml"), "big.csv", "bytes of CSV")
