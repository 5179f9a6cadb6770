"""The capture API: bad requests are MMErrors that name the problem, captures round-trip
through .npz, and everything works with torch absent."""

import sys
import zipfile

import numpy as np
import pytest

from mm_blender.errors import MMError
from mm_blender.models import Capture, capture_head, write_capture
from mm_blender.models.capture import ARRAYS

TEXT = "Every row asks a question and every column gives an answer to it."


@pytest.fixture(scope="module")
def small():
    return capture_head("minilm", 1, 2, TEXT, tokens=12, backend="numpy")


@pytest.mark.parametrize("model, layer, head, message", [
    ("smollm2", 40, 0, r"layer 40 out of range: smollm2 has 30 layers \(0-29\)"),
    ("smollm2", -1, 0, r"layer -1 out of range"),
    ("smollm2", 0, 9, r"head 9 out of range: smollm2 has 9 heads per layer \(0-8\)"),
    ("minilm", 6, 0, r"layer 6 out of range: minilm has 6 layers \(0-5\)"),
    ("minilm", 0, 12, r"head 12 out of range: minilm has 12 heads per layer \(0-11\)"),
])
def test_out_of_range(model, layer, head, message):
    with pytest.raises(MMError, match=message):
        capture_head(model, layer, head, TEXT)


@pytest.mark.parametrize("text, kwargs, message", [
    ("", {}, "text is empty"),
    ("   \n\t ", {}, "text is empty"),
    ("Hi", {}, "it gives 1 token, at least 2"),
    (TEXT, {"tokens": 1}, "tokens 1 is too few"),
    (TEXT, {"tokens": 100, "exact_tokens": True}, "gives 14 tokens, fewer than the 100 asked"),
    (TEXT, {"tokens": 9000}, "tokens 9000 over the limit: smollm2 reads at most 8192"),
    (TEXT, {"backend": "cuda"}, "backend 'cuda' is not one of"),
])
def test_bad_requests(text, kwargs, message):
    with pytest.raises(MMError, match=message):
        capture_head("smollm2", 0, 0, text, **kwargs)


def test_unknown_model_and_missing_paths(tmp_path):
    with pytest.raises(MMError, match="unknown model 'llama-7b'.*smollm2, minilm, gpt2"):
        capture_head("llama-7b", 0, 0, TEXT)
    with pytest.raises(MMError, match="no model.safetensors or pytorch_model.bin in folder"):
        capture_head(str(tmp_path), 0, 0, TEXT)
    broken = tmp_path / "model.gguf"
    broken.write_bytes(b"GGUF" + bytes(10))
    with pytest.raises(MMError, match="model.gguf"):
        capture_head(str(broken), 0, 0, TEXT)


def test_truncates_to_tokens_and_keeps_bert_separator():
    c = capture_head("minilm", 0, 0, TEXT, tokens=5, backend="numpy")
    assert c.tokens == ["[CLS]", "every", "row", "asks", "[SEP]"] and c.attn.shape == (5, 5)
    c = capture_head("smollm2", 0, 0, TEXT, tokens=5, backend="numpy")
    assert c.tokens == ["Every", " row", " asks", " a", " question"]


def test_default_text_and_default_token_count():
    c = capture_head("minilm", 0, 0, backend="numpy")
    assert len(c.tokens) == 256 and c.text.startswith("On the northern coast")


def test_save_load_round_trip(tmp_path, small):
    path = small.save(tmp_path / "sub" / "head.capture")  # any suffix: written where asked
    assert path.is_file() and zipfile.is_zipfile(path)
    back = Capture.load(path)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(small, name))
    for name in ("model", "layer", "head", "causal", "text", "tokens", "info"):
        assert getattr(back, name) == getattr(small, name), name


def test_load_refuses_bad_files(tmp_path, small):
    with pytest.raises(MMError, match="capture file .*absent.npz does not exist"):
        Capture.load(tmp_path / "absent.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00\x01 definitely not a zip archive" * 10)
    with pytest.raises(MMError, match="garbage.npz is not a readable capture file"):
        Capture.load(garbage)
    arrays = small.arrays()
    meta = np.load(small.save(tmp_path / "good.npz"))["meta"]
    np.savez(tmp_path / "no_attn.npz", meta=meta, **{k: v for k, v in arrays.items()
                                                       if k != "attn"})
    with pytest.raises(MMError, match="no_attn.npz: capture file is missing attn"):
        Capture.load(tmp_path / "no_attn.npz")
    np.savez(tmp_path / "no_meta.npz", **arrays)
    with pytest.raises(MMError, match="no 'meta' entry"):
        Capture.load(tmp_path / "no_meta.npz")
    np.savez(tmp_path / "bad_meta.npz", meta=np.array("{oops"), **arrays)
    with pytest.raises(MMError, match="metadata is corrupt"):
        Capture.load(tmp_path / "bad_meta.npz")
    np.savez(tmp_path / "wrong_shape.npz", meta=meta, **dict(arrays, Q=arrays["Q"][:3]))
    with pytest.raises(MMError, match=r"'Q' has shape \[3, 32\], expected \[12, 32\]"):
        Capture.load(tmp_path / "wrong_shape.npz")


def test_write_capture_reports_progress(tmp_path):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT * 3, encoding="utf-8")
    calls = []
    c = write_capture("smollm2", 2, 1, text_file, 16, tmp_path / "out.npz",
                      lambda fraction, message: calls.append((fraction, message)))
    assert Capture.load(tmp_path / "out.npz").tokens == c.tokens and len(c.tokens) == 16
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1
    assert any("layer 1" in m for _, m in calls)
    with pytest.raises(MMError, match="cannot read text file .*nothing.txt"):
        write_capture("smollm2", 0, 0, tmp_path / "nothing.txt", 16, tmp_path / "x.npz", None)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(MMError, match="latin1.txt is not UTF-8"):
        write_capture("smollm2", 0, 0, tmp_path / "latin1.txt", 16, tmp_path / "x.npz", None)


def test_everything_works_without_torch(monkeypatch, small):
    monkeypatch.setitem(sys.modules, "torch", None)  # as in a stock Blender
    c = capture_head("minilm", 1, 2, TEXT, tokens=12)
    assert c.info["backend"] == "numpy"
    np.testing.assert_array_equal(c.attn, small.attn)
    with pytest.raises(MMError, match="torch backend needs PyTorch"):
        capture_head("minilm", 1, 2, TEXT, tokens=12, backend="torch")


def test_model_modules_do_not_import_torch_or_bpy():
    import subprocess
    code = ("import sys, mm_blender.models, mm_blender.models.capture; "
            "print(sorted(m for m in ('torch', 'bpy', 'safetensors', 'gguf', 'tokenizers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.stdout.strip() == "[]"
