"""Our safetensors and GGUF readers: values, lazy row reads, corrupt and truncated files."""

import math
import struct

import numpy as np
import pytest

from mm_blender.errors import MMError
from mm_blender.models import layers, sources
from mm_blender.models.checkpoint_files import SafetensorsFile
from mm_blender.models.gguf_file import GGUFFile


def test_safetensors_reader_reads_values_and_rows(tmp_path, write_safetensors):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3)).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)
    c = np.array([1.0, -2.5, 3.25], np.float32)  # exact in bf16 and f16
    write_safetensors(tmp_path / "m.safetensors", {"a": a, "b": b, "c16": c, "cbf": c},
                      {"c16": "F16", "cbf": "BF16"})
    f = SafetensorsFile(tmp_path / "m.safetensors")
    assert sorted(f.names()) == ["a", "b", "c16", "cbf"]
    np.testing.assert_array_equal(f.get("a"), a)
    np.testing.assert_array_equal(f.get("a", rows=[4, 0, 4]), a[[4, 0, 4]])
    np.testing.assert_array_equal(f.get("b"), b)
    np.testing.assert_array_equal(f.get("c16"), c)
    np.testing.assert_array_equal(f.get("cbf"), c)
    with pytest.raises(MMError, match="'nope' is missing"):
        f.get("nope")


def test_safetensors_reader_agrees_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(1)
    tensors = {"x": rng.normal(size=(7, 2)).astype(np.float32),
               "y": rng.normal(size=(3,)).astype(np.float16)}
    st.save_file(tensors, str(tmp_path / "p.safetensors"))
    f = SafetensorsFile(tmp_path / "p.safetensors")
    for name, value in tensors.items():
        np.testing.assert_array_equal(f.get(name), value.astype(np.float32))


@pytest.mark.parametrize("content, message", [
    (b"", "shorter than 8 bytes"),
    (struct.pack("<Q", 1000) + b"{}", "truncated"),
    (struct.pack("<Q", 4) + b"nope", "not JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
])
def test_corrupt_safetensors_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    with pytest.raises(MMError, match=message) as e:
        SafetensorsFile(path)
    assert "broken.safetensors" in str(e.value)


def test_safetensors_tensor_past_end_of_file(tmp_path, write_safetensors):
    path = tmp_path / "short.safetensors"
    write_safetensors(path, {"w": np.zeros((10, 10), np.float32)})
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(MMError, match="tensor 'w' ends past the end"):
        SafetensorsFile(path)


def test_missing_weights_file():
    with pytest.raises(MMError, match="nowhere.safetensors"):
        SafetensorsFile("/nowhere/nowhere.safetensors")


@pytest.fixture(scope="module")
def smollm2_gguf_path():
    return sources.package_file(sources.SMOLLM2_GGUF)


def test_gguf_reader_reads_what_the_gguf_package_writes(tmp_path):
    """Header, metadata, offsets and dequantisation, checked against gguf's own writer and
    quantisers (its reader takes 5-12 s on the SmolLM2 file, too slow for a unit test)."""
    gguf = pytest.importorskip("gguf")
    rng = np.random.default_rng(2)
    Q = gguf.GGMLQuantizationType
    tensors = {"a.q4_1": (rng.normal(size=(6, 64)).astype(np.float32), Q.Q4_1),
               "b.q8_0": (rng.normal(size=(5, 96)).astype(np.float32), Q.Q8_0),
               "c.q4_0": (rng.normal(size=(3, 32)).astype(np.float32), Q.Q4_0),
               "d.f16": (rng.normal(size=(4, 8)).astype(np.float32), Q.F16),
               "e.f32": (rng.normal(size=(7,)).astype(np.float32), Q.F32)}
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("llama.block_count", 3)
    writer.add_float32("llama.rope.freq_base", 12345.0)
    writer.add_string("note", "héllo")
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "Ġc"])
    writer.add_array("numbers", [1, 2, 3])
    stored = {}
    for name, (values, kind) in tensors.items():
        if kind == Q.F32:
            writer.add_tensor(name, values)
            stored[name] = values
        elif kind == Q.F16:
            writer.add_tensor(name, values.astype(np.float16))
            stored[name] = values.astype(np.float16).astype(np.float32)
        else:
            raw = gguf.quants.quantize(values, kind)
            writer.add_tensor(name, raw, raw_dtype=kind)
            stored[name] = gguf.quants.dequantize(raw, kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    ours = GGUFFile(path)
    assert ours.field("llama.block_count") == 3
    assert ours.field("llama.rope.freq_base") == pytest.approx(12345.0)
    assert ours.field("note") == "héllo"
    assert ours.field("tokenizer.ggml.tokens") == ["a", "b", "Ġc"]
    assert list(ours.field("numbers")) == [1, 2, 3]
    for name, (values, kind) in tensors.items():
        assert ours.shape(name) == values.shape
        np.testing.assert_array_equal(ours.get(name), stored[name].reshape(values.shape))
        assert np.abs(ours.get(name) - values).max() < 0.3  # quantisation error only
    np.testing.assert_array_equal(ours.get("b.q8_0", rows=[4, 1]), stored["b.q8_0"][[4, 1]])
    with pytest.raises(MMError, match="'absent' is missing"):
        ours.field("absent")


def test_smollm2_dequantisation_matches_the_gguf_package(smollm2_gguf_path):
    gguf = pytest.importorskip("gguf")
    ours = GGUFFile(smollm2_gguf_path)
    for name in ("blk.4.attn_q.weight", "blk.4.ffn_down.weight", "token_embd.weight"):
        kind = gguf.GGMLQuantizationType(ours.tensors[name][1])
        raw = ours.raw(name, rows=[0, 3, 17])
        np.testing.assert_array_equal(ours.get(name, rows=[0, 3, 17]),
                                      gguf.quants.dequantize(raw, kind))
    assert ours.type_name("blk.4.attn_q.weight") == "Q4_1"
    assert ours.type_name("token_embd.weight") == "Q8_0"
    assert ours.shape("token_embd.weight") == (49152, 576)


def test_truncated_and_foreign_gguf(tmp_path, smollm2_gguf_path):
    cut = tmp_path / "cut.gguf"
    with open(smollm2_gguf_path, "rb") as f:
        cut.write_bytes(f.read(3_000_000))
    with pytest.raises(MMError, match="cut.gguf.*truncated"):
        GGUFFile(cut)
    header_only = tmp_path / "head.gguf"
    with open(smollm2_gguf_path, "rb") as f:
        header_only.write_bytes(f.read(200_000))
    with pytest.raises(MMError, match="head.gguf"):
        GGUFFile(header_only)
    foreign = tmp_path / "foreign.gguf"
    foreign.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(MMError, match="foreign.gguf: not a GGUF file"):
        GGUFFile(foreign)


def test_erf_is_accurate():
    x = np.linspace(-6, 6, 2001)
    exact = np.array([math.erf(v) for v in x])
    assert np.abs(layers.erf(x) - exact).max() < 2e-7
