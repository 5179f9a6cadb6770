"""Tracing torch code: the drawn trees, names and values against torch's own arithmetic,
for an MLP, a hand-written causal head, torch's MultiheadAttention and TransformerEncoderLayer
and the project's SmolLM2 torch head (against the capture path)."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mm_blender.core import expr as E  # noqa: E402
from mm_blender.core.evaluate import apply_epilogue, evaluate  # noqa: E402
from mm_blender.errors import MMError  # noqa: E402
from mm_blender.tracing import Trace, load_function, trace, trace_file  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "trace_examples.py"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)   # 2 shared cores: torch's threads fight numpy's
    yield
    torch.set_num_threads(before)


def example(name, **options):
    t = Trace.run(load_function(f"{EXAMPLES}:{name}"), label=name, **options)
    # an op the recorder failed on is reported, not raised (the user's code must run on);
    # in these examples there is none
    assert not [s for s in t.skipped if "not drawn (" in s], t.skipped
    return t


def drawn(spec):
    """Every matrix of a spec by name, as mm_blender computes it from the saved leaves."""
    values = evaluate(spec)
    out = dict(values.leaves)
    for node in E.matmuls(spec.tree):
        out[node.name] = values.results[node.path]
    return out


def assert_every_matmul_is_its_epilogue(spec):
    values = evaluate(spec)
    for node in E.matmuls(spec.tree):
        left = values.of(node.left).astype(np.float64)
        right = values.of(node.right).astype(np.float64)
        want = apply_epilogue(left @ right, spec.matmul(node).epilogue, left.shape[1])
        np.testing.assert_allclose(values.results[node.path], want, rtol=1e-5, atol=1e-6)


def close(got, want, tol=1e-5):
    if isinstance(want, torch.Tensor):
        want = want.detach()
    want = np.asarray(want, np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def test_mlp_of_linears_with_relu(tmp_path):
    t = example("mlp")
    spec = t.save(tmp_path / "mlp.toml")
    assert spec.expr == ("net.4 = (net.2 = (net.0 = x @ net.0.weight_t) @ net.2.weight_t) "
                         "@ net.4.weight_t")
    assert [spec.matmuls[n].epilogue for n in ("net.0", "net.2", "net.4")] == [
        "relu", "relu", "none"]
    assert (tmp_path / "mlp.npz").is_file() and len(t.trees) == 1
    torch.manual_seed(0)   # the same network, computed here
    net = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                        nn.Linear(24, 6))
    x = torch.randn(10, 12)
    with torch.no_grad():
        h1 = torch.relu(net[0](x))
        h2 = torch.relu(net[2](h1))
        y = net[4](h2)
    m = drawn(spec)
    close(m["net.4"], y)                                    # the root is the output
    ones = np.ones((10, 1))
    close(m["net.0"], np.hstack([h1, ones]))                # biases: a ones column ...
    close(m["net.2"], np.hstack([h2, ones]))
    np.testing.assert_array_equal(m["x"], np.hstack([x, ones]))
    w = net[4].weight.detach().numpy()                       # ... and a bias row
    np.testing.assert_array_equal(m["net.4.weight_t"],
                                  np.vstack([w.T, net[4].bias.detach().numpy()[None]]))
    assert_every_matmul_is_its_epilogue(spec)


def test_hand_written_causal_head(tmp_path):
    t = example("causal_head")
    spec = t.save(tmp_path / "head.toml")
    assert spec.expr == "out = (attn = (q = x @ w_q) @ (k_t = w_k_t @ x_t)) @ (v = x @ w_v)"
    assert spec.matmuls["attn"].epilogue == "softmax(tril(x/sqrt(k)))"
    m = drawn(spec)
    close(m["out"], t.result)
    torch.manual_seed(1)
    x = torch.randn(16, 24)
    w_q, w_k, w_v = (torch.randn(24, 8) / 5 for _ in range(3))
    np.testing.assert_array_equal(m["x_t"], x.numpy().T)    # one tensor, one name: x and x_t
    q, k = x @ w_q, x @ w_k
    scores = (q @ k.T / math.sqrt(8)).masked_fill(~torch.ones(16, 16).bool().tril(), -math.inf)
    close(m["attn"], torch.softmax(scores, -1))
    close(m["k_t"], k.T)
    assert_every_matmul_is_its_epilogue(spec)


def _mha_head(mha, x, head):
    """One head of torch's MultiheadAttention by hand: (Q, K, attn, head_out)."""
    e, h = mha.embed_dim, mha.num_heads
    hd = e // h
    w, b = mha.in_proj_weight.detach(), mha.in_proj_bias.detach()
    parts = []
    for i in range(3):
        rows = slice(i * e + head * hd, i * e + (head + 1) * hd)
        parts.append(x @ w[rows].T + b[rows])
    q, k, v = parts
    attn = torch.softmax(q @ k.T / math.sqrt(hd), -1)
    return q, k, attn, attn @ v


def test_multihead_attention(tmp_path):
    t = example("multihead_attention")
    spec = t.save(tmp_path / "mha.toml")
    assert spec.expr == ("mha.head_out = (mha.attn = (mha.Q = x @ mha.wQ) @ (mha.K_t = "
                         "mha.wK_t @ x_t)) @ (mha.V = x @ mha.wV)")
    assert spec.matmuls["mha.attn"].epilogue == "softmax(x/sqrt(k))"
    torch.manual_seed(2)
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_bias.normal_(0, 0.1)
        mha.out_proj.bias.normal_(0, 0.1)
    x = torch.randn(1, 12, 32)
    with torch.no_grad():
        q, k, attn, head_out = _mha_head(mha, x[0], 0)
    m = drawn(spec)
    close(m["mha.Q"], q)
    close(m["mha.K_t"], k.T)
    close(m["mha.attn"], attn)
    close(m["mha.head_out"], head_out)
    assert m["x"].shape == (12, 33) and np.all(m["x"][:, -1] == 1)   # the in-proj bias
    assert_every_matmul_is_its_epilogue(spec)
    # the output projection is a tree of its own (the heads are concatenated in between);
    # drawn with --root, its root is the module's output
    assert [tr.name for tr in t.trees] == ["mha.head_out", "mha.out_proj"]
    spec = t.save(tmp_path / "proj.toml", root="mha.out_proj")
    close(drawn(spec)["mha.out_proj"], t.result[0])
    assert_every_matmul_is_its_epilogue(spec)


def test_multihead_attention_picks_batch_and_head():
    def fn():
        torch.manual_seed(4)
        mha = nn.MultiheadAttention(16, 2, batch_first=True).eval()
        x = torch.randn(3, 6, 16)
        return mha(x, x, x, need_weights=False)[0], mha, x

    t = Trace.run(fn, batch=2, head=1)
    spec = t.spec()
    _, mha, x = t.result
    with torch.no_grad():
        _, _, attn, head_out = _mha_head(mha, x[2], 1)
    m = drawn(spec)
    root = spec.tree
    # torch lays the batch out sequence-major inside: batch 2's rows are every third row of
    # the fused projection, and head 1 its second block of columns
    assert spec.expr == ("mha.head_out = (mha.attn = (mha.Q = x @ mha.wQ) @ (mha.K_t = "
                         "mha.wK_t @ x_t)) @ (mha.V = x @ mha.wV)")
    close(m[root.name], head_out)
    close(m[root.left.name], attn)
    np.testing.assert_array_equal(m["x"], x[2].numpy())
    assert_every_matmul_is_its_epilogue(spec)


def test_transformer_encoder_layer(tmp_path):
    t = example("encoder_layer")
    names = [tr.name for tr in t.trees]
    assert names == ["layer.self_attn.head_out", "layer.linear2", "layer.self_attn.out_proj"]
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True).eval()
    with torch.no_grad():
        layer.self_attn.in_proj_bias.normal_(0, 0.1)
    x = torch.randn(1, 32, 64)
    with torch.no_grad():
        _, _, attn, head_out = _mha_head(layer.self_attn, x[0], 0)
        h = layer.norm1(x + layer._sa_block(x, None, None))[0]
        ffn = layer.linear2(torch.relu(layer.linear1(h)))
    spec = t.save(tmp_path / "enc.toml")   # the largest: one attention head
    m = drawn(spec)
    close(m["layer.self_attn.attn"], attn)
    close(m["layer.self_attn.head_out"], head_out)
    assert_every_matmul_is_its_epilogue(spec)
    spec = t.save(tmp_path / "ffn.toml", root="layer.linear2")
    assert spec.expr == ("layer.linear2 = (layer.linear1 = layer.norm1 @ layer.linear1.weight_t)"
                         " @ layer.linear2.weight_t")
    assert spec.matmuls["layer.linear1"].epilogue == "relu"
    m = drawn(spec)
    close(m["layer.linear2"], ffn)
    close(m["layer.norm1"][:, :-1], h)   # (torch computed it by its fused path here)
    assert_every_matmul_is_its_epilogue(spec)
    with pytest.raises(MMError, match="no tree has the root 'nope'.*layer.linear2"):
        t.save(tmp_path / "x.toml", root="nope")


def test_smollm2_torch_head_agrees_with_the_capture_path(tmp_path):
    from mm_blender.models import capture_head
    t = example("smollm2_head")
    spec = t.save(tmp_path / "smollm2.toml")
    assert spec.expr == "out = (head_out = (attn = q @ k_t) @ (V = inp @ wV)) @ proj[256-320]"
    assert spec.matmuls["attn"].epilogue == "softmax(tril(x/sqrt(k)))"
    cap = capture_head("smollm2", 1, 4, tokens=24, backend="numpy")
    m = drawn(spec)
    for name, want in (("q", cap.Q), ("k_t", cap.K.T), ("attn", cap.attn),
                       ("head_out", cap.head_out), ("out", cap.out), ("V", cap.V)):
        close(m[name], want, tol=1e-4)
    close(m["out"], t.result.out, tol=1e-5)   # what the torch path itself returned
    assert_every_matmul_is_its_epilogue(spec)


def test_ops_einsum_bmm_addmm_baddbmm_and_other_ops_become_leaves():
    def fn():
        torch.manual_seed(5)
        a, b = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 6, 4)
        s = torch.einsum("bhqd,bhkd->bhqk", a, b)        # a two-operand matmul
        p = F.gelu(torch.bmm(s[1], torch.randn(3, 6, 7)))   # bmm with a gelu epilogue
        bias, m1, m2 = torch.randn(7), torch.randn(5, 7), torch.randn(7, 7)
        y = torch.addmm(bias, m1, m2)                     # drawn with a ones column
        z = torch.baddbmm(torch.zeros(3, 5, 2), p, torch.randn(3, 7, 2))
        w = (y @ m2) * 0.3 + 1                            # not an epilogue: a leaf
        return s, p, y, z, w @ m2

    t = Trace.run(fn, batch=1, head=2)
    s, p, y, z, last = t.result

    def tree_of(value):
        found = [tr for tr in t.trees if tr.root.value.shape == tuple(value.shape)
                 and np.allclose(tr.root.value, value.detach().numpy(), atol=1e-5)]
        assert len(found) == 1
        return t.spec(root=found[0].name)

    einsum = tree_of(s[1, 2])
    close(drawn(einsum)[einsum.tree.name], s[1, 2])
    spec = tree_of(z[1])                     # z = p @ r with p = gelu(bmm): two matmuls
    assert len(E.matmuls(spec.tree)) == 2
    assert spec.matmuls[spec.tree.left.name].epilogue == "gelu"
    close(drawn(spec)[spec.tree.name], z[1], tol=1e-4)
    close(drawn(spec)[spec.tree.left.name], p[1], tol=1e-4)
    spec = tree_of(last)                     # w @ m2, where w is a leaf of torch's values
    m = drawn(spec)
    close(m[spec.tree.name], last)
    w = m[spec.tree.left.name]
    right = m[spec.tree.right.name]
    close(w, (y @ torch.from_numpy(right)) * 0.3 + 1, tol=1e-4)
    # y = addmm(bias, m1, m2) is drawn as [m1 | 1] @ [[m2], [bias]], inside the tree of y @ m2
    spec = tree_of(y @ torch.from_numpy(right))
    m = drawn(spec)
    close(m[spec.tree.left.name], y)
    assert m[spec.tree.left.left.name].shape == (5, 8)
    assert_every_matmul_is_its_epilogue(spec)


def test_sdpa_causal_expands_into_three_steps():
    def fn():
        torch.manual_seed(6)
        q, k, v = (torch.randn(1, 2, 8, 4) for _ in range(3))
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    t = Trace.run(fn, head=1)
    spec = t.spec()
    assert spec.matmuls[spec.tree.left.name].epilogue == "softmax(tril(x/sqrt(k)))"
    close(drawn(spec)[spec.tree.name], t.result[0, 1])
    assert t.trees[0].is_output


def test_api_trace_returns_a_buildable_spec():
    x = torch.randn(4, 3)
    w = torch.randn(3, 5)
    spec = trace(lambda x, w: torch.relu(x @ w), x, w)
    assert spec.expr.endswith("x @ w") and spec.matmuls[spec.tree.name].epilogue == "relu"
    close(drawn(spec)[spec.tree.name], torch.relu(x @ w))


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(MMError, match="FILE.py:FUNCTION"):
        trace_file("nofunc", tmp_path / "a.toml")
    with pytest.raises(MMError, match="does not exist"):
        trace_file(f"{tmp_path}/none.py:f", tmp_path / "a.toml")
    with pytest.raises(MMError, match="has no function 'nope'; it defines .*mlp"):
        trace_file(f"{EXAMPLES}:nope", tmp_path / "a.toml")
    with pytest.raises(MMError, match="a preset must end in .toml"):
        trace_file(f"{EXAMPLES}:mlp", tmp_path / "a.png")
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    raise ValueError('boom')\n")
    with pytest.raises(MMError, match="raised ValueError: boom"):
        trace_file(f"{bad}:f", tmp_path / "a.toml")
    bad.write_text("def f():\n    return 3\n")
    with pytest.raises(MMError, match="no matmul was recorded"):
        trace_file(f"{bad}:f", tmp_path / "a.toml")
    with pytest.raises(MMError, match="batch 5 / head 0 out of range for shape \\(2, 3, 3\\)"):
        Trace.run(lambda: torch.randn(2, 3, 4) @ torch.randn(2, 4, 3), batch=5).tree()
    with pytest.raises(MMError, match="batch and head are indices"):
        Trace.run(lambda: torch.randn(2, 3) @ torch.randn(3, 3), head=-1)
    assert not list(tmp_path.glob("a.*"))   # nothing written


def test_cli_trace_prints_the_tree_and_every_tree(tmp_path):
    out = tmp_path / "enc.toml"
    r = subprocess.run([sys.executable, "-m", "mm_blender", "trace",
                        f"{EXAMPLES}:encoder_layer", "--out", str(out), "--head", "2"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "layer.self_attn.attn  32x32  matmul (epilogue softmax(x/sqrt(k)))" in r.stdout
    assert "trees found: 3" in r.stdout and " * layer.self_attn.head_out" in r.stdout
    assert "   layer.linear2  (2 matmuls" in r.stdout
    assert out.is_file() and out.with_suffix(".npz").is_file()
    r = subprocess.run([sys.executable, "-m", "mm_blender", "check", str(out)],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "layer.self_attn.wQ  65x16  leaf, file" in r.stdout


def test_without_torch_trace_says_so_and_the_rest_works(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "import mm_blender, mm_blender.tracing, mm_blender.cli\n"
            "from mm_blender.cli import main\n"
            "assert main(['check', 'intro_cube']) == 0\n"
            f"sys.exit(main(['trace', {str(EXAMPLES)!r} + ':mlp', '--out', "
            f"{str(tmp_path / 'a.toml')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2
    assert "trace runs PyTorch code and needs torch, which is not installed" in r.stderr
    assert not (tmp_path / "a.toml").exists()
    r = subprocess.run([sys.executable, "-c", "import sys, mm_blender, mm_blender.tracing, "
                        "mm_blender.cli; print('torch' in sys.modules)"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.stdout.strip() == "False"   # never imported at module level


def test_trees_have_unique_root_names_and_root_picks_each():
    def project(x, w):
        out = torch.relu(x @ w)
        return out

    def fn():
        torch.manual_seed(7)
        x, w = torch.randn(4, 3), torch.randn(3, 5)
        first = project(x, w)
        second = project(x + 1, w)   # the add makes a leaf: a second tree
        return first, second

    t = Trace.run(fn)
    assert sorted(tr.name for tr in t.trees) == ["out", "out_2"]
    first, second = t.result
    for tr in t.trees:
        spec = t.spec(root=tr.name)
        assert spec.tree.name == tr.name and spec.expr == tr.expr
        want = first if np.allclose(tr.root.value, first.numpy()) else second
        close(drawn(spec)[tr.name], want)


def test_sdpa_masks_a_causal_one_is_an_epilogue_another_a_leaf_of_torchs_weights():
    def fn():
        torch.manual_seed(8)
        q, k, v = (torch.randn(1, 1, 6, 4) for _ in range(3))
        causal = torch.ones(6, 6, dtype=torch.bool).tril()
        band = causal & ~torch.ones(6, 6, dtype=torch.bool).tril(-3)   # a sliding window
        return (F.scaled_dot_product_attention(q, k, v, attn_mask=causal),
                F.scaled_dot_product_attention(q, k, v, attn_mask=band), q, k)

    t = Trace.run(fn)
    with_causal, with_band, q, k = t.result
    specs = [t.spec(root=tr.name) for tr in t.trees]
    by_root = {}
    for spec in specs:
        value = drawn(spec)[spec.tree.name]
        by_root["causal" if np.allclose(value, with_causal[0, 0], atol=1e-5) else "band"] = spec
    causal = by_root["causal"]
    assert causal.matmuls[causal.tree.left.name].epilogue == "softmax(tril(x/sqrt(k)))"
    band = by_root["band"]
    close(drawn(band)[band.tree.name], with_band[0, 0])
    attn = drawn(band)[band.tree.left.name]   # a leaf: torch's own masked softmax
    assert band.tree.left.name not in band.matmuls
    scores = (q[0, 0] @ k[0, 0].T) / 2
    mask = torch.ones(6, 6, dtype=torch.bool).tril() & ~torch.ones(6, 6, dtype=torch.bool).tril(-3)
    close(attn, torch.softmax(scores.masked_fill(~mask, -math.inf), -1))
    assert any("not an mm epilogue" in s for s in t.skipped)


ACTIVATIONS = {"none": None, "relu": torch.relu, "gelu": F.gelu, "sigmoid": torch.sigmoid,
               "tanh": torch.tanh, "silu": F.silu}


def _segments(layers):
    """Sizes of the trees a chain of linears makes. A bias needs a ones column on the layer's
    input; the layers below carry one up while their epilogue keeps 1 as 1 (none, relu),
    down to one that has it already (a bias of its own, or the input); where an epilogue
    cannot, that layer's result is copied as a leaf and the chain is cut above it."""
    connected = [True] * len(layers)     # connected[i]: layer i reads layer i - 1's node
    safe = [act in ("none", "relu") for _, act in layers]
    for i, (bias, _) in enumerate(layers):
        k = i - 1
        while bias and k >= 0:
            if not safe[k]:
                connected[k + 1] = False
                break
            if layers[k][0] or not connected[k]:
                break
            k -= 1
    sizes = []
    for c in connected:
        if c and sizes:
            sizes[-1] += 1
        else:
            sizes.append(1)
    return sizes


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40)   # each example runs torch under the trace: keep CI quick
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(sorted(ACTIVATIONS))), min_size=1,
                max_size=4),
       st.lists(st.integers(1, 6), min_size=5, max_size=5), st.integers(0, 2 ** 16))
def test_any_chain_of_linears_draws_exactly(layers, widths, seed):
    def fn():
        torch.manual_seed(seed)
        h = torch.randn(3, widths[0])
        for i, (bias, act) in enumerate(layers):
            h = F.linear(h, torch.randn(widths[i + 1], widths[i]),
                         torch.randn(widths[i + 1]) if bias else None)
            if ACTIVATIONS[act] is not None:
                h = ACTIVATIONS[act](h)
        return h

    t = Trace.run(fn)
    # every layer drawn once; cut where expected (or fewer: an activation that changed
    # nothing, relu of a negative column, is no epilogue at all)
    assert sum(tr.matmuls for tr in t.trees) == len(layers)
    assert len(t.trees) <= len(_segments(layers))
    if all(ACTIVATIONS[act] is None or act == "relu" for _, act in layers):
        assert len(t.trees) == 1
    for tr in t.trees:
        spec = t.spec(root=tr.name)
        assert_every_matmul_is_its_epilogue(spec)
        if tr.is_output:
            close(drawn(spec)[tr.name], t.result, tol=1e-4)
    assert any(tr.is_output for tr in t.trees)


@settings(max_examples=40)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 7), st.integers(1, 6),
       st.booleans(), st.booleans(), st.data())
def test_any_scaled_dot_product_attention_draws_exactly(batch, heads, tokens, dim, causal,
                                                        grouped, data):
    b = data.draw(st.integers(0, batch - 1))
    h = data.draw(st.integers(0, heads - 1))
    kv_heads = 1 if grouped else heads

    def fn():
        torch.manual_seed(batch * 100 + heads * 10 + tokens)
        q = torch.randn(batch, heads, tokens, dim)
        k, v = (torch.randn(batch, kv_heads, tokens, dim) for _ in range(2))
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                              enable_gqa=grouped)

    t = Trace.run(fn, batch=b, head=h)
    assert t.trees[0].is_output and t.trees[0].matmuls == 2
    spec = t.spec()
    epilogue = "softmax(tril(x/sqrt(k)))" if causal else "softmax(x/sqrt(k))"
    assert spec.matmuls[spec.tree.left.name].epilogue == epilogue
    close(drawn(spec)[spec.tree.name], t.result[b, h], tol=1e-4)
    assert_every_matmul_is_its_epilogue(spec)
