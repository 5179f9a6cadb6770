"""mm links: every article example read from `?params=` and compressed links, checked against
its JSON; spec -> mm -> spec round trips; `?config=` files and servers; bad input."""

import dataclasses
import http.server
import json
import math
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from mm_blender.core import expr as exprmod
from mm_blender.core import spec as specmod
from mm_blender.errors import MMError
from mm_blender.interop import mm_links

ARTICLE = Path(__file__).resolve().parent.parent / "data" / "mm_article_examples.json"
PRESETS = Path(__file__).resolve().parents[2] / "presets"

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

# a copy of shared/reference/mm_article_examples.json (the article's 37 decoded examples)
EXAMPLES = {e["label"]: e["params"] for e in json.loads(ARTICLE.read_text())}
assert len(EXAMPLES) == 37


def needs_article(f):
    return f


# --- independent encoders (what mm's saveUrl writes) ------------------------------------------

def params_link(params: dict) -> str:
    return mm_links.MM_URL + "?" + urllib.parse.urlencode({"params": json.dumps(params)})


def compressed_link(params: dict) -> str:
    """mm's compress(flatten(params)): each path as <parent number>.<key number>, names after."""
    flat = []

    def walk(tree, prefix):
        for k, v in tree.items():
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
            else:
                flat.append((prefix + k, v))

    walk(params, "")
    names = {}

    def num(name):
        return names.setdefault(name, str(len(names)))

    pairs = []
    for path, value in flat:
        if "." in path:
            parent, last = path.rsplit(".", 1)
            key = num(parent) + "." + num(last)
        else:
            key = num(path)
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        pairs.append((key, text))
    pairs += list(names.items())
    return mm_links.MM_URL + "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


# --- independent reading of an mm tree ---------------------------------------------------------

def is_mm_matmul(p, root=False):
    return root or bool(p.get("matmul"))


def derive(parent, scheme, is_left):
    """mm's LAYOUT_RULES, written out from its truth tables."""
    pol = parent["polarity"] == "positive"
    lft = parent["left placement"] == "right"
    rgt = parent["right placement"] == "bottom"
    res = parent["result placement"] == "back"
    if scheme == "wheel":
        f = (pol, lft, rgt, res)
    elif scheme == "zigzag":
        f = (not pol, pol != res if is_left else lft, rgt if is_left else pol != res,
             pol == (lft if is_left else rgt))
    else:
        f = (not pol, pol != res if is_left else not lft, (not rgt) if is_left else pol != res,
             pol == (lft if is_left else rgt))
    return {"polarity": ["negative", "positive"][f[0]],
            "left placement": ["left", "right"][f[1]],
            "right placement": ["top", "bottom"][f[2]],
            "result placement": ["front", "back"][f[3]]}


def spec_placements(spec):
    """Every non-root matmul's placement by tree path, as our spec implies it."""
    L = spec.layout
    out = {}

    def walk(node, parent_place):
        for child, is_left in ((node.left, True), (node.right, False)):
            if isinstance(child, exprmod.MatMul):
                ms = spec.matmuls[child.name]
                if L.scheme == "custom" and ms.placement is not None:
                    p = ms.placement
                    place = {"polarity": p.polarity, "left placement": p.left_placement,
                             "right placement": p.right_placement,
                             "result placement": p.result_placement}
                else:
                    place = derive(parent_place, "blocks" if L.scheme == "custom" else L.scheme,
                                   is_left)
                out[child.path] = place
                walk(child, place)

    root = {"polarity": L.polarity, "left placement": L.left_placement,
            "right placement": L.right_placement, "result placement": L.result_placement}
    walk(spec.tree, root)
    return out


def pairs(mm_node, node, root=True):
    """(mm params node, our node) for every node, walked together."""
    yield mm_node, node
    if isinstance(node, exprmod.MatMul):
        yield from pairs(mm_node["left"], node.left, False)
        yield from pairs(mm_node["right"], node.right, False)


def check_spec_matches(spec, params, dropped):
    renamed = any("renamed" in d for d in dropped)
    if not renamed:
        assert spec.expr == params["expr"]
    # layout, blocks, anim, viz at the root
    lay = params["layout"]
    assert spec.layout.scheme == lay["scheme"] or "-> 'custom'" in " ".join(dropped)
    assert spec.layout.gap == lay["gap"]
    assert spec.layout.scatter == lay["scatter"]
    assert spec.layout.molecule == lay["molecule"]
    assert spec.layout.blast == lay["blast"]
    assert (spec.layout.polarity, spec.layout.left_placement, spec.layout.right_placement,
            spec.layout.result_placement) == (lay["polarity"], lay["left placement"],
                                              lay["right placement"], lay["result placement"])
    blk = params["block"]
    assert (spec.blocks.i, spec.blocks.j, spec.blocks.k) == (
        blk["i blocks"], blk["j blocks"], blk["k blocks"])
    anim = params["anim"]
    assert spec.anim.alg == anim["alg"]
    assert spec.anim.fuse == anim["fuse"]
    assert spec.anim.speed == anim["speed"]
    assert spec.anim.hide_inputs == anim["hide inputs"]
    if anim["spin"]:
        assert spec.anim.spin == pytest.approx(40 * math.pi / anim["spin"])
    else:
        assert spec.anim.spin == 0
    viz = params["viz"]
    for mm_key, ours in (("sensitivity", "sensitivity"), ("min size", "min_size"),
                         ("min light", "min_light"), ("max light", "max_light"),
                         ("elem scale", "elem_scale"), ("zero hue", "zero_hue"),
                         ("hue gap", "hue_gap"), ("hue spread", "hue_spread")):
        assert getattr(spec.viz, ours) == viz[mm_key], mm_key
    deco = params["deco"]
    assert spec.deco.legends == deco["legends"]
    assert spec.deco.shape_labels == deco["shape"]
    assert spec.deco.row_guides == deco["row guides"]
    assert spec.deco.flow_guides == deco["flow guides"]

    placements = spec_placements(spec)
    stored_place = {"": {k: lay[k] for k in ("polarity", "left placement", "right placement",
                                             "result placement")}}
    first_leaf = {}
    for mm_node, node in pairs(params, spec.tree):
        if isinstance(node, exprmod.Leaf):
            leaf = spec.leaves[node.name]
            key = (mm_node["h"], mm_node["w"], mm_node["init"],
                   mm_node.get("expr") if mm_node["init"] == "expr" else "",
                   mm_node.get("url") if mm_node["init"] == "url" else "",
                   mm_node["min"], mm_node["max"], mm_node["dropout"])
            first_leaf.setdefault(node.name, key)
            if key != first_leaf[node.name]:
                assert any(repr(node.name) in d for d in dropped)
                continue
            assert (leaf.h, leaf.w) == (mm_node["h"], mm_node["w"])
            assert leaf.init == mm_node["init"]
            if leaf.init == "expr":
                assert leaf.formula == mm_node["expr"]
            if leaf.init == "url":
                assert leaf.url == mm_node["url"]
            assert (leaf.min, leaf.max, leaf.dropout) == (
                mm_node["min"], mm_node["max"], mm_node["dropout"])
            continue
        ms = spec.matmuls[node.name]
        assert ms.epilogue == mm_node.get("epilog", "none")
        if node.path:
            assert ms.alg == mm_node.get("anim", {}).get("alg", "inherit")
            assert ms.k_blocks == mm_node.get("block", {}).get("k blocks", 1)
            parent = stored_place[node.path[:-1]]
            stored = {**parent, **mm_node.get("layout", {})}
            stored = {k: stored[k] for k in parent}
            stored_place[node.path] = stored
            assert placements[node.path] == stored, node.name


# --- every article example ----------------------------------------------------------------------

@needs_article
@pytest.mark.parametrize("form", ["params", "compressed"])
@pytest.mark.parametrize("label", sorted(EXAMPLES) or ["none"])
def test_article_example_imports(label, form):
    params = EXAMPLES[label]
    link = params_link(params) if form == "params" else compressed_link(params)
    read = mm_links.mm_params_from_text(link, allow_network=False)
    assert read == params
    data, dropped = mm_links.spec_dict_from_mm(read, name=label)
    spec = specmod.from_dict(data, name=label)
    check_spec_matches(spec, params, dropped)
    assert not any(d.startswith("cam") for d in dropped)   # the viewpoint is kept
    cam = params["cam"]
    t = cam.get("target", {"x": 0, "y": 0, "z": 0})
    want = np.array([cam["x"] - t["x"], -(cam["z"] - t["z"]), cam["y"] - t["y"]])
    np.testing.assert_allclose(data["look"]["camera"], want / np.linalg.norm(want), atol=1e-4)
    assert spec.name == label


@needs_article
def test_article_compress_matches_ours():
    for params in EXAMPLES.values():
        ours = mm_links.MM_URL + "?" + urllib.parse.urlencode(mm_links.compress(params))
        assert mm_links.mm_params_from_text(ours) == params


@needs_article
def test_url_leaves_keep_their_url():
    params = EXAMPLES["attention_l5h4_fused_vmprod"]
    data, _ = mm_links.spec_dict_from_mm(params)
    urls = {name: t.get("url") for name, t in data["matrix"].items()}
    assert all(u.startswith("https://raw.githubusercontent.com/") for u in urls.values()), urls
    assert all(t["init"] == "url" for t in data["matrix"].values())


@needs_article
def test_gaussian_leaves_drop_their_stale_url():
    data, _ = mm_links.spec_dict_from_mm(EXAMPLES["full_layer"])
    assert all("url" not in t for t in data["matrix"].values())


@needs_article
def test_propagated_blocks_that_disagree_are_reported():
    _, dropped = mm_links.spec_dict_from_mm(EXAMPLES["full_layer_bpt_and_split_k"])
    assert any("'attn': stored j blocks 1 ignored" in d for d in dropped)
    _, dropped = mm_links.spec_dict_from_mm(EXAMPLES["full_layer_bpt"])
    assert not any("blocks" in d for d in dropped)


@needs_article
def test_same_name_other_shape_is_renamed():
    data, dropped = mm_links.spec_dict_from_mm(EXAMPLES["attention_decoding"])
    assert "input_0_5_2" in data["expr"]
    assert data["matrix"]["input_0_5"]["h"] == 1 and data["matrix"]["input_0_5_2"]["h"] == 256
    assert any("renamed 'input_0_5_2'" in d for d in dropped)
    specmod.from_dict(data)


@needs_article
def test_child_overrides_and_unknown_keys_are_reported():
    _, dropped = mm_links.spec_dict_from_mm(EXAMPLES["data_parallel"])
    assert any("'A @ B @ C': its own viz" in d for d in dropped)
    _, dropped = mm_links.spec_dict_from_mm(EXAMPLES["lora_head"])
    assert any("'anim.j blocks'" in d and "'wO'" in d for d in dropped)
    data, dropped = mm_links.spec_dict_from_mm(EXAMPLES["intro_cube"])
    text = " ".join(dropped)
    for key in ("spotlight", "lens size", "magnification", "axes"):   # all kept now
        assert f"deco.{key}" not in text
    assert data["deco"]["lens"] is True


# --- spec -> mm -> spec -------------------------------------------------------------------------

# Ours only (mm's lens follows the mouse, its spotlight the hover): noted on export.
NOT_IN_MM_DECO = {"lens_row": -1, "lens_col": -1, "lens_decimals": 2, "spotlight_row": -1,
                  "spotlight_col": -1, "spotlight_matmul": ""}


def comparable(spec):
    deco = dataclasses.replace(spec.deco, **NOT_IN_MM_DECO)
    return (spec.expr, spec.leaves, spec.matmuls, spec.layout, spec.blocks, spec.viz,
            deco, (spec.anim.alg, spec.anim.fuse, spec.anim.speed, spec.anim.hide_inputs))


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.toml")), ids=lambda p: p.stem)
def test_preset_round_trips_through_mm(path):
    spec = specmod.load_toml(path)
    notes = []
    link = mm_links.mm_link_from_spec(spec, notes=notes)
    assert link.startswith(mm_links.MM_URL + "?")
    params = mm_links.mm_params_from_text(link, allow_network=False)
    data, _ = mm_links.spec_dict_from_mm(params, name=spec.name)
    back = specmod.from_dict(data, name=spec.name)
    if any(leaf.init == "transpose" for leaf in spec.leaves.values()):
        assert any("transpose" in n for n in notes)
        return
    if spec.model is not None:   # mm has no real-model data: said in the notes, shapes kept
        assert any("model" in n for n in notes)
        assert back.expr == spec.expr
        assert {n: (l.h, l.w) for n, l in back.leaves.items()} == \
            {n: (l.h, l.w) for n, l in spec.leaves.items()}
        return
    assert comparable(back) == comparable(spec)
    assert back.anim.spin == pytest.approx(spec.anim.spin)


def test_long_specs_use_the_compressed_form():
    spec = specmod.load_toml(PRESETS / "full_layer.toml")
    params = mm_links.mm_params_from_spec(spec)
    assert len(urllib.parse.urlencode({"params": json.dumps(params)})) > mm_links.URL_LIMIT
    link = mm_links.mm_link_from_spec(spec)
    assert "params=" not in link and "0=" in link
    assert len(link.split("?", 1)[1]) < len(urllib.parse.urlencode(
        {"params": json.dumps(params)}))
    short = mm_links.mm_link_from_spec(specmod.load_toml(PRESETS / "intro_cube.toml"))
    assert "?params=" in short


def make_spec(extra: str = "", expr: str = "A @ B @ (C @ D)") -> specmod.Spec:
    import tomllib
    text = f'expr = "{expr}"\n' + extra
    return specmod.from_dict(tomllib.loads(text), name="t")


def test_custom_layout_round_trips():
    spec = make_spec("""
[layout]
scheme = "custom"
polarity = "positive"
[matmul."A @ B"]
polarity = "positive"
left_placement = "right"
right_placement = "top"
result_placement = "front"
k_blocks = 3
alg = "mvprod"
[matmul."C @ D"]
epilogue = "gelu"
[blocks]
i = 2
j = 4
k = 2
""")
    params = mm_links.mm_params_from_spec(spec)
    assert params["left"]["layout"] == {"polarity": "positive", "left placement": "right",
                                        "right placement": "top", "result placement": "front"}
    assert params["left"]["block"] == {"i blocks": 2, "k blocks": 3, "j blocks": 2}
    assert params["right"]["block"] == {"i blocks": 2, "k blocks": 1, "j blocks": 4}
    data, dropped = mm_links.spec_dict_from_mm(params)
    back = specmod.from_dict(data)
    assert back.layout.scheme == "custom"
    assert spec_placements(back) == spec_placements(spec)
    assert back.matmuls["A @ B"].k_blocks == 3 and back.matmuls["A @ B"].alg == "mvprod"
    assert back.matmuls["C @ D"].epilogue == "gelu"
    assert not [d for d in dropped if "blocks" in d]


def test_stored_placements_unlike_the_scheme_become_custom():
    spec = make_spec()
    params = mm_links.mm_params_from_spec(spec)
    params["right"]["layout"]["polarity"] = "negative"
    data, dropped = mm_links.spec_dict_from_mm(params)
    back = specmod.from_dict(data)
    assert back.layout.scheme == "custom"
    assert any("-> 'custom'" in d and "'C @ D'" in d for d in dropped)
    assert back.matmuls["C @ D"].placement.polarity == "negative"
    assert spec_placements(back)["l"] == spec_placements(spec)["l"]


@pytest.mark.parametrize("scheme", ["blocks", "zigzag", "wheel"])
def test_schemes_derive_like_mm(scheme):
    spec = make_spec(f'[layout]\nscheme = "{scheme}"\n', "A @ (B @ C @ D) @ (E @ F)")
    params = mm_links.mm_params_from_spec(spec)
    data, dropped = mm_links.spec_dict_from_mm(params)
    assert data["layout"]["scheme"] == scheme
    assert "matmul" not in data or all("polarity" not in t for t in data["matmul"].values())


def test_what_mm_lacks_is_noted(tmp_path):
    import numpy as np
    np.save(tmp_path / "w.npy", np.ones((4, 3), dtype=np.float32))
    spec = specmod.from_dict({
        "expr": "A @ At @ W",
        "matrix": {
            "A": {"h": 3, "w": 4, "init": "expr", "formula": "i * w + j"},
            "At": {"h": 4, "w": 3, "init": "transpose", "source": "A"},
            "W": {"h": 3, "w": 4, "init": "file", "file": "w.npy"},
        },
        "viz": {"colormap": "diverging", "cell_shape": "cube"},
        "look": {"background": "paper"},
        "anim": {"seconds": 5.0},
    }, base_dir=tmp_path)
    notes = []
    params = mm_links.mm_params_from_spec(spec, notes)
    text = " ".join(notes)
    for word in ("'file'", "diverging", "cube", "paper", "seconds"):
        assert word in text, word
    # the transpose of an expr leaf stays exact: its formula is called with i/j, h/w swapped
    at = params["left"]["right"]
    assert at["init"] == "expr" and "(j, i, w, h)" in at["expr"]
    assert params["right"]["init"] == "gaussian"


def test_transposed_ramps_map_exactly():
    spec = specmod.from_dict({
        "expr": "A @ B",
        "matrix": {"A": {"h": 3, "w": 4, "init": "row major"},
                   "B": {"h": 4, "w": 3, "init": "transpose", "source": "A"}}})
    params = mm_links.mm_params_from_spec(spec)
    assert params["right"]["init"] == "col major"


def test_zeros_and_ones_export_as_formulas():
    spec = specmod.from_dict({"expr": "A @ B", "matrix": {"A": {"init": "zeros"},
                                                          "B": {"init": "ones"}}})
    params = mm_links.mm_params_from_spec(spec)
    assert (params["left"]["init"], params["left"]["expr"]) == ("expr", "0")
    assert (params["right"]["init"], params["right"]["expr"]) == ("expr", "1")


# --- reading: forms, defaults, mapping --------------------------------------------------------

def test_expr_only_gets_mm_defaults():
    data, dropped = mm_links.spec_dict_from_mm({"expr": "A @ B @ C"})
    spec = specmod.from_dict(data)
    assert spec.leaves["A"].init == "row major" and spec.leaves["C"].init == "col major"
    assert (spec.leaves["B"].h, spec.leaves["B"].w) == (32, 32)
    assert spec.viz.sensitivity == "global"    # index.html's default, not ours
    assert spec.layout.gap == 4
    assert spec.anim.speed == 20


def test_pasted_json_and_bare_query_and_file(tmp_path):
    params = {"expr": "X @ Y"}
    assert mm_links.mm_params_from_text("  " + json.dumps(params) + "\n") == params
    query = urllib.parse.urlencode({"params": json.dumps(params)})
    assert mm_links.mm_params_from_text("?" + query) == params
    assert mm_links.mm_params_from_text(query) == params
    f = tmp_path / "link.txt"
    f.write_text(mm_links.MM_URL + "?" + query + "\n")
    assert mm_links.mm_params_from_text(str(f)) == params
    g = tmp_path / "p.json"
    g.write_text(json.dumps(params))
    assert mm_links.mm_params_from_text(str(g)) == params


def test_config_local_file(tmp_path):
    f = tmp_path / "conf.json"
    f.write_text(json.dumps({"expr": "P @ Q"}))
    for value in (str(f), f.as_uri()):
        link = mm_links.MM_URL + "?" + urllib.parse.urlencode({"config": value})
        assert mm_links.mm_params_from_text(link, allow_network=False)["expr"] == "P @ Q"


@pytest.fixture
def json_server(tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps({"expr": "S @ T"}))
    (tmp_path / "big.json").write_text(json.dumps({"expr": "S @ T", "pad": "x" * 5000}))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_config_over_http(json_server, monkeypatch):
    link = mm_links.MM_URL + "?config=" + urllib.parse.quote(json_server + "/ok.json")
    assert mm_links.mm_params_from_text(link)["expr"] == "S @ T"
    with pytest.raises(MMError, match="network access is off"):
        mm_links.mm_params_from_text(link, allow_network=False)
    with pytest.raises(MMError, match="404"):
        mm_links.mm_params_from_text(link.replace("ok.json", "missing.json"))
    monkeypatch.setattr(mm_links, "CONFIG_MAX_BYTES", 1000)
    with pytest.raises(MMError, match="larger than 1000 bytes"):
        mm_links.mm_params_from_text(link.replace("ok.json", "big.json"))


def test_softmax_tril_x8():
    params = {"expr": "Q @ K", "epilog": "softmax(tril(x/8))",
              "left": {"name": "Q", "matmul": False, "h": 8, "w": 64, "init": "rows"},
              "right": {"name": "K", "matmul": False, "h": 64, "w": 8, "init": "cols"}}
    data, dropped = mm_links.spec_dict_from_mm(params)
    assert data["matmul"]["Q @ K"]["epilogue"] == "softmax(tril(x/sqrt(k)))"
    assert not any("x/8" in d for d in dropped)          # k = 64: the same scaling
    params["left"]["w"] = params["right"]["h"] = 16
    data, dropped = mm_links.spec_dict_from_mm(params)
    assert any("x/8" in d and "k = 16" in d for d in dropped)


def test_out_of_range_and_unknown_choices_are_noted():
    params = {"expr": "A @ B", "layout": {"gap": 100, "scheme": "spiral"},
              "viz": {"sensitivity": "cosmic"},
              "left": {"name": "A", "h": 4, "w": 4, "init": "sphere"},
              "right": {"name": "B", "h": 4, "w": 4, "init": "url", "url": ""}}
    data, dropped = mm_links.spec_dict_from_mm(params)
    spec = specmod.from_dict(data)
    assert spec.layout.gap == 64 and spec.layout.scheme == "blocks"
    assert spec.viz.sensitivity == "global"
    assert spec.leaves["A"].init == "zeros" and spec.leaves["B"].init == "zeros"
    text = " ".join(dropped)
    for word in ("gap", "spiral", "cosmic", "'sphere'", "no url"):
        assert word in text, word


def test_same_leaf_other_settings_keeps_first():
    params = {"expr": "A @ A",
              "left": {"name": "A", "h": 4, "w": 4, "init": "rows"},
              "right": {"name": "A", "h": 4, "w": 4, "init": "cols"}}
    data, dropped = mm_links.spec_dict_from_mm(params)
    assert data["matrix"]["A"]["init"] == "rows"
    assert any("'A' appears again" in d for d in dropped)


def test_import_mm_writes_a_loadable_preset(tmp_path):
    out = tmp_path / "mine.toml"
    query = urllib.parse.urlencode({"params": json.dumps(
        {"expr": "A @ B", "cam": {"x": 1, "y": 2, "z": 3}, "deco": {"spotlight": 3}})})
    data, dropped = mm_links.import_mm(mm_links.MM_URL + "?" + query, out)
    spec = specmod.load_toml(out)
    assert spec.name == "mine" and data["name"] == "mine"
    text = out.read_text()
    assert text.startswith("# Imported from an mm link")
    assert "deco.spotlight" not in text and "#   - cam:" not in text   # both are kept
    assert spec.deco.spotlight == 3
    assert spec.look.camera == pytest.approx([1 / 14 ** 0.5, -3 / 14 ** 0.5, 2 / 14 ** 0.5], abs=1e-4)


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, match", [
    ("", "nothing to import"),
    ("hello world", "not an mm URL"),
    ("{not json", "not valid JSON"),
    ('{"name": "x"}', "no 'expr'"),
    ("[1, 2]", "not an mm URL"),
    ('{"expr": 3}', "'expr' must be a string"),
    (mm_links.MM_URL, "no '\\?params="),
    (mm_links.MM_URL + "?params=%7Bbad", "not valid JSON"),
    (mm_links.MM_URL + "?params=%5B%5D", "not a JSON object"),
    (mm_links.MM_URL + "?config=ftp%3A%2F%2Fexample.com%2Fp.json", "ftp: URL"),
    (mm_links.MM_URL + "?config=javascript%3Aalert(1)", "javascript: URL"),
    (mm_links.MM_URL + "?config=%2Fno%2Fsuch%2Ffile.json", "neither an http"),
    (mm_links.MM_URL + "?0=A%20%40%20B&7.8=3&expr=0", "number 7"),
    (mm_links.MM_URL + "?0.1=abc&left=0&h=1&expr=2", "not a number"),
    (mm_links.MM_URL + "?foo=bar", "no params=, config= or compressed"),
])
def test_bad_input(text, match):
    with pytest.raises(MMError, match=match):
        mm_links.mm_params_from_text(text, allow_network=False)


@pytest.mark.parametrize("params, match", [
    ({"expr": "A @ B", "left": {"name": "A"}}, "both 'left' and 'right'"),
    ({"expr": "A @ B", "left": {"name": "A b"}, "right": {"name": "B"}}, "not a matrix name"),
    ({"expr": "A @ B", "layout": {"gap": "wide"}}, "layout.gap"),
    ({"expr": "A @ B", "anim": {"hide inputs": 3}}, "hide inputs"),
    ({"expr": "A @ ", }, "expression"),
    ({"expr": "A @ B", "viz": 7}, "'viz' must be a group"),
])
def test_bad_params(params, match):
    with pytest.raises(MMError, match=match):
        mm_links.spec_dict_from_mm(params)


def test_shape_mismatch_is_an_error_on_import():
    params = {"expr": "A @ B", "left": {"name": "A", "h": 4, "w": 5},
              "right": {"name": "B", "h": 4, "w": 4}}
    with pytest.raises(MMError, match="shape mismatch"):
        mm_links.import_mm(json.dumps(params))


def test_deep_nesting_is_an_error():
    tree = {"name": "A"}
    for _ in range(3000):
        tree = {"matmul": True, "name": "x", "left": tree, "right": {"name": "B"}}
    with pytest.raises(MMError, match="more than 100 matmuls deep"):
        mm_links.spec_dict_from_mm({"expr": "A @ B", **tree})
    with pytest.raises(MMError, match="nests more than 208 levels deep"):
        mm_links.mm_params_from_text('{"expr": "A @ B", "a": ' + "[" * 100000 + "]" * 100000 + "}")


# --- lens, spotlight, axes ---------------------------------------------------------------------

def test_lens_spotlight_and_axes_import_without_notes_and_export_back():
    params = {"expr": "A @ B", "deco": {"lens size": 0.8, "magnification": 5, "spotlight": 3,
                                         "interior spotlight": True, "axes": True}}
    data, dropped = mm_links.spec_dict_from_mm(params)
    assert not [d for d in dropped if "deco" in d]
    spec = specmod.from_dict(data)
    d = spec.deco
    assert (d.lens, d.lens_size, d.magnification, d.spotlight, d.interior_spotlight, d.axes) == (
        True, 0.8, 5.0, 3.0, True, True)
    back = mm_links.mm_params_from_spec(spec)["deco"]
    for key, value in params["deco"].items():
        assert back[key] == value, key
    again = specmod.from_dict(mm_links.spec_dict_from_mm(mm_links.mm_params_from_spec(spec))[0])
    assert again.deco == spec.deco


def test_no_lens_exports_no_lens_settings():
    spec = specmod.from_dict({"expr": "A @ B"})
    deco = mm_links.mm_params_from_spec(spec)["deco"]
    assert "lens size" not in deco and "magnification" not in deco
    data, _ = mm_links.spec_dict_from_mm(mm_links.mm_params_from_spec(spec))
    assert data["deco"]["lens"] is False


def test_spotlight_cell_is_noted_on_export():
    spec = specmod.from_dict({"expr": "A @ B", "deco": {"spotlight_row": 1, "spotlight_col": 2}})
    notes: list[str] = []
    mm_links.mm_params_from_spec(spec, notes)
    assert any("spotlight_row" in n and "(1, 2)" in n for n in notes)
