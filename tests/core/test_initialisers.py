"""mm's leaf initialisers: exact ramps and masks, seeded random inits, rescale and dropout,
CSV wrapping, npy/npz/safetensors files, url over a local http server, and the errors."""

import http.server
import json
import struct
import threading

import numpy as np
import pytest

from mm_blender.core import initialisers
from mm_blender.core.initialisers import INITIALISERS, init_values
from mm_blender.errors import MMError


def iv(init, h=4, w=6, **kw):
    return init_values("A", h, w, init, **kw)


def grid(h, w):
    i, j = np.indices((h, w)).astype(np.float64)
    return i, j


# --------------------------------------------------------------------------------------------
# Names


def test_initialiser_names_are_mms_plus_extras():
    mm = ["rows", "cols", "row major", "col major", "pt linear", "uniform", "gaussian",
          "tril mask", "triu mask", "eye", "diff", "url", "expr"]
    assert set(mm) <= set(INITIALISERS)
    assert set(INITIALISERS) - set(mm) == {"file", "zeros", "ones"}
    assert isinstance(INITIALISERS, tuple) and len(set(INITIALISERS)) == len(INITIALISERS)


def test_unknown_init_lists_the_valid_ones():
    with pytest.raises(MMError) as info:
        iv("sphere")
    message = str(info.value)
    assert "leaf 'A'" in message and "'sphere'" in message
    for name in INITIALISERS:
        assert f"'{name}'" in message


# --------------------------------------------------------------------------------------------
# Ramps, masks (exact)


RAMPS = {
    "rows": lambda i, j, h, w: i / (h - 1),
    "cols": lambda i, j, h, w: j / (w - 1),
    "row major": lambda i, j, h, w: (i * w + j) / (h * w - 1),
    "col major": lambda i, j, h, w: (j * h + i) / (h * w - 1),
}


@pytest.mark.parametrize("init", sorted(RAMPS))
def test_ramps_exact(init):
    h, w = 5, 7
    i, j = grid(h, w)
    f = RAMPS[init](i, j, h, w)
    plain = iv(init, h, w, min=0, max=1)
    assert plain.dtype == np.float32 and plain.shape == (h, w)
    np.testing.assert_array_equal(plain, f.astype(np.float32))
    assert plain.min() == 0 and plain.max() == 1
    np.testing.assert_array_equal(iv(init, h, w), (-1 + 2 * f).astype(np.float32))  # defaults
    np.testing.assert_array_equal(iv(init, h, w, min=3, max=5), (3 + 2 * f).astype(np.float32))


def test_row_and_col_major_orders():
    np.testing.assert_array_equal(iv("row major", 2, 3, min=0, max=5), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(iv("col major", 2, 3, min=0, max=5), [[0, 2, 4], [1, 3, 5]])


def test_degenerate_ramps_are_zero_before_rescale():
    np.testing.assert_array_equal(iv("rows", 1, 3, min=0, max=1), np.zeros((1, 3)))
    np.testing.assert_array_equal(iv("cols", 3, 1, min=0, max=1), np.zeros((3, 1)))
    np.testing.assert_array_equal(iv("row major", 1, 1), [[-1]])  # 0 rescaled to min
    assert iv("col major", 0, 5).shape == (0, 5)


def test_max_below_min_collapses_to_min_as_in_mm():
    np.testing.assert_array_equal(iv("cols", 2, 4, min=2, max=-3), np.full((2, 4), 2.0))


def test_masks_exact_and_not_rescaled_or_dropped():
    for h, w in ((4, 6), (6, 4), (5, 5)):
        ones = np.ones((h, w))
        kw = dict(min=-7, max=9, dropout=0.9, seed=3)
        np.testing.assert_array_equal(iv("tril mask", h, w, **kw), np.tril(ones))
        np.testing.assert_array_equal(iv("triu mask", h, w, **kw), np.triu(ones))
        np.testing.assert_array_equal(iv("eye", h, w, **kw), np.eye(h, w))
        np.testing.assert_array_equal(iv("diff", h, w, **kw), np.eye(h, w) - np.eye(h, w, k=-1))
        np.testing.assert_array_equal(iv("zeros", h, w, **kw), np.zeros((h, w)))
        np.testing.assert_array_equal(iv("ones", h, w, **kw), ones)


# --------------------------------------------------------------------------------------------
# Random inits


@pytest.mark.parametrize("init", ["uniform", "gaussian", "pt linear"])
def test_random_inits_are_seeded(init):
    a = iv(init, 30, 40, seed=7)
    assert a.dtype == np.float32 and a.shape == (30, 40)
    np.testing.assert_array_equal(a, iv(init, 30, 40, seed=7))
    assert not np.array_equal(a, iv(init, 30, 40, seed=8))
    assert np.unique(a).size > 1000


def test_uniform_range_and_moments():
    plain = iv("uniform", 300, 300, min=0, max=1, seed=1)
    assert plain.min() >= 0 and plain.max() < 1
    assert abs(plain.mean() - 0.5) < 0.01
    scaled = iv("uniform", 300, 300, min=-3, max=5, seed=1)
    np.testing.assert_allclose(scaled, -3 + 8 * plain.astype(np.float64), rtol=1e-6, atol=1e-6)
    assert scaled.min() >= -3 and scaled.max() < 5


def test_gaussian_mean_and_sd():
    plain = iv("gaussian", 400, 400, min=0, max=1, seed=2)  # mm: mean .5, sd .5
    assert abs(plain.mean() - 0.5) < 0.01 and abs(plain.std() - 0.5) < 0.01
    default = iv("gaussian", 400, 400, seed=2)  # -1 + 2 * N(.5, .5) = N(0, 1)
    assert abs(default.mean()) < 0.02 and abs(default.std() - 1) < 0.02


def test_pt_linear_scale_and_not_rescaled():
    w = 64
    a = iv("pt linear", 200, w, min=0, max=1, seed=4)
    assert np.abs(a).max() <= 1 / np.sqrt(w)
    assert abs(a.mean()) < 0.01
    assert abs(a.std() - (1 / np.sqrt(3)) / np.sqrt(w)) < 0.005  # (2u-1) has sd 1/sqrt(3)
    np.testing.assert_array_equal(a, iv("pt linear", 200, w, min=-5, max=5, seed=4))


@pytest.mark.parametrize("init", ["uniform", "gaussian", "pt linear", "rows", "row major"])
def test_dropout_fraction(init):
    a = iv(init, 400, 400, min=1, max=2, dropout=0.3, seed=5)
    fraction = np.mean(a == 0)
    assert abs(fraction - 0.3) < 0.01
    b = iv(init, 400, 400, min=1, max=2, dropout=0.0, seed=5)
    kept = a != 0
    np.testing.assert_array_equal(a[kept], b[kept])  # dropout only zeroes; values unchanged
    assert np.all(iv(init, 10, 10, dropout=1.0) == 0)


def test_dropout_not_applied_to_expr_or_file(tmp_path):
    np.testing.assert_array_equal(iv("expr", 3, 3, formula="1", dropout=0.9), np.ones((3, 3)))
    (tmp_path / "a.csv").write_text("1,2\n3,4\n")
    out = iv("file", 2, 2, file="a.csv", base_dir=tmp_path, dropout=0.9, min=5, max=9)
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "kw,fragment",
    [
        (dict(dropout=1.5), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(min="low"), "min"),
        (dict(seed=1.5), "seed"),
        (dict(seed="x"), "seed"),
    ],
)
def test_bad_parameters(kw, fragment):
    with pytest.raises(MMError, match=fragment):
        iv("uniform", **kw)


@pytest.mark.parametrize("h,w", [(-1, 3), (2.5, 3), (3, "4"), (True, 3)])
def test_bad_sizes(h, w):
    with pytest.raises(MMError, match="leaf 'A'"):
        init_values("A", h, w, "rows")


def test_negative_and_huge_seeds_work():
    assert iv("uniform", seed=-1).shape == (4, 6)
    assert not np.array_equal(iv("uniform", seed=-1), iv("uniform", seed=1))
    assert iv("uniform", seed=2**100).shape == (4, 6)


# --------------------------------------------------------------------------------------------
# expr


def test_expr_intro_cube():
    out = init_values("L", 32, 24, "expr", formula="-2 * (Math.trunc(i / 8) % 2) + 1")
    i, _ = grid(32, 24)
    np.testing.assert_array_equal(out, np.where((i // 8) % 2 == 0, 1, -1))
    assert out.dtype == np.float32


def test_expr_not_rescaled_and_carries_nan_inf():
    out = iv("expr", 2, 3, formula="j == 0 ? 0/0 : j == 1 ? 1/0 : 7", min=0, max=100)
    assert np.all(np.isnan(out[:, 0])) and np.all(np.isposinf(out[:, 1])) and np.all(out[:, 2] == 7)


def test_expr_errors_name_the_leaf():
    with pytest.raises(MMError, match="leaf 'Q': formula 'i \\+ \\(j': column 7: expected '\\)'"):
        init_values("Q", 2, 2, "expr", formula="i + (j")
    with pytest.raises(MMError, match="leaf 'Q'.*no formula"):
        init_values("Q", 2, 2, "expr", formula="  ")


# --------------------------------------------------------------------------------------------
# CSV files (mm's url format)


def test_csv_wraps_like_mm(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n4,5\n6\n")  # ragged rows, trailing newline
    out = iv("file", 7, 5, file="d.csv", base_dir=tmp_path)
    data = [[1, 2, 3], [4, 5], [6]]
    expected = [[data[i % 3][j % len(data[i % 3])] for j in range(5)] for i in range(7)]
    np.testing.assert_array_equal(out, expected)


def test_csv_exact_size_spaces_crlf_blank_cells(tmp_path):
    (tmp_path / "d.csv").write_bytes(b"\xef\xbb\xbf 1 , -2.5,1e3\r\n,4, 5\r\n\r\n")
    out = iv("file", 2, 3, file="d.csv", base_dir=tmp_path)
    np.testing.assert_array_equal(out, [[1, -2.5, 1000], [0, 4, 5]])


def test_csv_blank_line_inside_is_a_zero_row_as_in_mm(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\n\n3,4\n")
    np.testing.assert_array_equal(
        iv("file", 3, 2, file="d.csv", base_dir=tmp_path), [[1, 2], [0, 0], [3, 4]]
    )


def test_csv_nan_inf_pass_through(tmp_path):
    (tmp_path / "d.csv").write_text("nan,inf\n-inf,1\n")
    out = iv("file", 2, 2, file="d.csv", base_dir=tmp_path)
    assert np.isnan(out[0, 0]) and out[0, 1] == np.inf and out[1, 0] == -np.inf and out[1, 1] == 1


def test_csv_non_numeric_cell_names_line_and_column(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n4,five,6\n")
    with pytest.raises(MMError) as info:
        iv("file", 2, 3, file="d.csv", base_dir=tmp_path)
    message = str(info.value)
    assert "d.csv" in message and "leaf 'A'" in message
    assert "line 2, column 2" in message and "five" not in message   # contents stay private


def test_csv_empty_and_not_utf8(tmp_path):
    (tmp_path / "e.csv").write_text("\n\n")
    with pytest.raises(MMError, match="no data"):
        iv("file", file="e.csv", base_dir=tmp_path)
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(MMError, match="UTF-8"):
        iv("file", file="b.csv", base_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# npy / npz


def test_npy_round_trip_and_dtypes(tmp_path):
    a = np.arange(24, dtype=np.float64).reshape(4, 6) / 7
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(iv("file", file="a.npy", base_dir=tmp_path), a.astype(np.float32))
    for dtype in (np.int16, np.uint8, np.float16, np.bool_):
        np.save(tmp_path / "t.npy", (a * 7).astype(dtype))
        out = iv("file", file="t.npy", base_dir=tmp_path)
        np.testing.assert_array_equal(out, (a * 7).astype(dtype).astype(np.float32))


def test_npy_absolute_path_and_nan_inf(tmp_path):
    a = np.array([[np.nan, np.inf], [-np.inf, 1e39]])  # 1e39 overflows float32 to inf
    np.save(tmp_path / "a.npy", a)
    out = init_values("A", 2, 2, "file", file=str(tmp_path / "a.npy"))
    assert np.isnan(out[0, 0]) and out[0, 1] == np.inf and out[1, 0] == -np.inf
    assert out[1, 1] == np.inf


def test_npy_1d_is_one_row(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(5.0))
    np.testing.assert_array_equal(iv("file", 1, 5, file="v.npy", base_dir=tmp_path), [np.arange(5)])


def test_npy_shape_mismatch_names_file_and_shapes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 5)))
    with pytest.raises(MMError) as info:
        iv("file", 4, 6, file="a.npy", base_dir=tmp_path)
    message = str(info.value)
    assert "a.npy" in message and "3 x 5" in message and "4 x 6" in message
    np.save(tmp_path / "c.npy", np.zeros((2, 2, 2)))
    with pytest.raises(MMError, match="3 dimensions"):
        iv("file", file="c.npy", base_dir=tmp_path)
    np.save(tmp_path / "z.npy", np.zeros((4, 6), dtype=np.complex64))
    with pytest.raises(MMError, match="complex"):
        iv("file", file="z.npy", base_dir=tmp_path)


def test_corrupt_npy_and_pickles(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    with pytest.raises(MMError, match="'bad.npy' for leaf 'A': not a valid .npy file"):
        iv("file", file="bad.npy", base_dir=tmp_path)
    np.save(tmp_path / "good.npy", np.zeros((4, 6)))
    raw = (tmp_path / "good.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) - 40])
    with pytest.raises(MMError, match="not a valid .npy"):
        iv("file", file="cut.npy", base_dir=tmp_path)
    np.save(tmp_path / "obj.npy", np.array([[{}, 1]], dtype=object), allow_pickle=True)
    with pytest.raises(MMError, match="holds object values"):   # refused from its header
        iv("file", 1, 2, file="obj.npy", base_dir=tmp_path)


def test_npz_tensors(tmp_path):
    a, b = np.ones((4, 6)), np.arange(24.0).reshape(4, 6)
    np.savez(tmp_path / "one.npz", only=a)
    np.testing.assert_array_equal(iv("file", file="one.npz", base_dir=tmp_path), a)
    np.savez_compressed(tmp_path / "two.npz", a=a, b=b)
    np.testing.assert_array_equal(iv("file", file="two.npz", tensor="b", base_dir=tmp_path), b)
    with pytest.raises(MMError, match="holds 2 arrays.*'a', 'b'"):
        iv("file", file="two.npz", base_dir=tmp_path)
    with pytest.raises(MMError, match="no array 'c'.*'a', 'b'"):
        iv("file", file="two.npz", tensor="c", base_dir=tmp_path)
    with pytest.raises(MMError, match="tensor 'a'.*4 x 6 but the leaf is 2 x 2"):
        iv("file", 2, 2, file="two.npz", tensor="a", base_dir=tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(MMError, match="not a valid .npz"):
        iv("file", file="bad.npz", base_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# safetensors


def write_safetensors(path, tensors, dtypes=None, metadata=None):
    """Hand-written safetensors file: {name: array}; dtypes overrides the header's dtype name."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        code = (dtypes or {}).get(name) or {
            "float32": "F32", "float64": "F64", "float16": "F16", "int32": "I32",
            "int64": "I64", "uint8": "U8", "bool": "BOOL"}[array.dtype.name]
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def test_safetensors_hand_written(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(4, 6) - 3.5
    b = np.arange(24, dtype=np.int32).reshape(4, 6)
    write_safetensors(tmp_path / "m.safetensors", {"w.a": a, "w.b": b}, metadata={"k": "v"})
    for tensor, expected in (("w.a", a), ("w.b", b)):
        out = iv("file", file="m.safetensors", tensor=tensor, base_dir=tmp_path)
        np.testing.assert_array_equal(out, expected)
    with pytest.raises(MMError, match="holds 2 tensors"):
        iv("file", file="m.safetensors", base_dir=tmp_path)
    with pytest.raises(MMError, match="no tensor 'w.c'.*'w.a', 'w.b'"):
        iv("file", file="m.safetensors", tensor="w.c", base_dir=tmp_path)
    with pytest.raises(MMError, match="m.safetensors.*tensor 'w.a'.*4 x 6 but the leaf is 6 x 4"):
        iv("file", 6, 4, file="m.safetensors", tensor="w.a", base_dir=tmp_path)


def test_safetensors_bf16_and_f16(tmp_path):
    values = np.array([[1.0, -2.5, 0.15625], [np.inf, np.nan, 3e38]], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype(np.uint16)  # exact for these values
    small = np.where(np.abs(values) > 6e4, 6e4, values)  # within float16 range
    write_safetensors(tmp_path / "b.safetensors", {"x": bf16, "y": small.astype(np.float16)},
                      dtypes={"x": "BF16"})
    out = iv("file", 2, 3, file="b.safetensors", tensor="x", base_dir=tmp_path)
    np.testing.assert_array_equal(out, (bf16.astype(np.uint32) << 16).view(np.float32))
    assert out[0, 1] == -2.5 and np.isnan(out[1, 1]) and out[1, 0] == np.inf
    half = iv("file", 2, 3, file="b.safetensors", tensor="y", base_dir=tmp_path)
    np.testing.assert_array_equal(half, small.astype(np.float16).astype(np.float32))


def test_safetensors_written_by_the_library(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    a = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    v = np.arange(6, dtype=np.float64)
    st_numpy.save_file({"a": a, "v": v}, str(tmp_path / "lib.safetensors"))
    out = iv("file", file="lib.safetensors", tensor="a", base_dir=tmp_path)
    np.testing.assert_array_equal(out, a)
    np.testing.assert_array_equal(iv("file", 1, 6, file="lib.safetensors", tensor="v",
                                     base_dir=tmp_path), [v])


def test_corrupt_safetensors(tmp_path):
    a = np.ones((4, 6), dtype=np.float32)
    write_safetensors(tmp_path / "ok.safetensors", {"a": a})
    raw = (tmp_path / "ok.safetensors").read_bytes()
    cases = {
        "short.safetensors": b"\x01\x02",
        "hugeheader.safetensors": struct.pack("<Q", 10**12) + b"{}",
        "notjson.safetensors": struct.pack("<Q", 5) + b"{nope" + b"\0" * 8,
        "list.safetensors": struct.pack("<Q", 2) + b"[]",
        "cut.safetensors": raw[:-10],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MMError, match=f"'{name}' for leaf 'A': not a valid .safetensors"):
            iv("file", file=name, tensor="a", base_dir=tmp_path)
    write_safetensors(tmp_path / "f8.safetensors", {"a": np.zeros((4, 6), np.uint8)},
                      dtypes={"a": "F8_E4M3"})
    with pytest.raises(MMError, match="F8_E4M3 is not supported"):
        iv("file", file="f8.safetensors", base_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# File errors


def test_file_errors(tmp_path):
    with pytest.raises(MMError, match="'missing.npy' for leaf 'A': not found"):
        iv("file", file="missing.npy", base_dir=tmp_path)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(MMError, match="unsupported file type '.json'"):
        iv("file", file="x.json", base_dir=tmp_path)
    with pytest.raises(MMError, match="no file"):
        iv("file", file="")
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(MMError, match="dir.npy is a folder, not a data file"):
        iv("file", file="dir.npy", base_dir=tmp_path)


def test_blender_relative_spelling(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((4, 6)))
    np.testing.assert_array_equal(iv("file", file="//a.npy", base_dir=tmp_path), np.ones((4, 6)))


# --------------------------------------------------------------------------------------------
# url


@pytest.fixture
def server():
    """A local http server: path -> (status, body bytes); counts requests."""
    routes, hits = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            status, body = routes.get(self.path, (404, b"not here"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    initialisers._URL_CACHE.clear()
    yield base, routes, hits
    httpd.shutdown()
    httpd.server_close()
    initialisers._URL_CACHE.clear()


def test_url_csv_wraps_and_is_cached(server):
    base, routes, hits = server
    routes["/data.csv"] = (200, b"1,2,3\n4,5,6\n")
    out = init_values("W", 3, 4, "url", url=base + "/data.csv", min=9, max=10, dropout=0.5)
    np.testing.assert_array_equal(out, [[1, 2, 3, 1], [4, 5, 6, 4], [1, 2, 3, 1]])
    again = init_values("W", 2, 2, "url", url=base + "/data.csv")
    np.testing.assert_array_equal(again, [[1, 2], [4, 5]])
    assert hits == ["/data.csv"]  # the second read came from the in-process cache


def test_url_errors(server):
    base, routes, _ = server
    with pytest.raises(MMError, match="url '.*/nope.csv' for leaf 'A': .*HTTP 404"):
        iv("url", url=base + "/nope.csv")
    routes["/bad.csv"] = (200, b"1,x\n")
    with pytest.raises(MMError, match="line 1, column 2"):
        iv("url", url=base + "/bad.csv")
    with pytest.raises(MMError, match="network access is off"):
        iv("url", url=base + "/data.csv", allow_network=False)
    with pytest.raises(MMError, match="could not download"):
        iv("url", url="http://127.0.0.1:1/x.csv")  # nothing listens on port 1


@pytest.mark.parametrize("url", ["ftp://example.com/a.csv", "file:///etc/passwd", "data.csv",
                                 "javascript:alert(1)"])
def test_url_only_http(url):
    with pytest.raises(MMError, match="only http:// and https://"):
        iv("url", url=url)


def test_url_missing():
    with pytest.raises(MMError, match="no url"):
        iv("url", url="")
