"""mm links and our presets, both ways: read mm's `?params=` JSON, its compressed flat form and
`?config=` files into a preset dict (listing what we cannot keep), and write a spec as an mm link.

mm keeps its whole state in the URL (index.html reads it on load): `?params=<JSON>`, or, once
that query passes 2048 characters, a flat form in which every dotted key path is spelt with
numbers and the numbers' names travel in the same query (`0.1=32&left=0&h=1`), or
`?config=<url of a JSON file>`. The params tree is authoritative; its `expr` is regenerated
from it. No bpy here.
"""
from __future__ import annotations

import json
import logging
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import MMError
from ..core import expr as exprmod
from ..core import layout
from ..core import spec as specmod
from ..core.file_headers import json_depth
from ..core.initialisers import INITIALISERS, network_off

log = logging.getLogger(__name__)

MM_URL = "https://bhosmer.github.io/mm/index.html"
URL_LIMIT = 2048            # mm switches to the compressed form past this many query characters
CONFIG_TIMEOUT_S = 10.0
CONFIG_MAX_BYTES = 4 << 20  # a params file is a few kB; anything huge is not one
TEXT_MAX_BYTES = 4 << 20

# mm's defaults: the root params of index.html, and viz.js defaultLeft/defaultRight/...
MM_ANIM = {"fuse": "none", "speed": 20, "hide inputs": False, "alg": "none", "spin": 0}
MM_BLOCK = {"i blocks": 1, "k blocks": 1, "j blocks": 1}
MM_PLACEMENT = {"polarity": "negative", "left placement": "left", "right placement": "top",
                "result placement": "front"}
MM_LAYOUT = {"scheme": "blocks", "gap": 4, "scatter": 0, "molecule": 1, "blast": 0,
             **MM_PLACEMENT}
MM_DECO = {"legends": 6, "shape": True, "spotlight": 2, "row guides": 0.6, "flow guides": 0.5,
           "lens size": 0.5, "magnification": 7, "interior spotlight": False, "axes": False}
MM_VIZ = {"sensitivity": "global", "min size": 0.2, "min light": 0.4, "max light": 0.7,
          "elem scale": 1.25, "zero hue": 0.77, "hue gap": 0.74, "hue spread": 0.04}
MM_LEFT = {"name": "L", "matmul": False, "h": 32, "w": 32, "init": "row major", "url": "",
           "min": -1, "max": 1, "dropout": 0}
MM_RIGHT = {**MM_LEFT, "name": "R", "init": "col major"}
MM_EPILOGUES = specmod.EPILOGUES + ("softmax(tril(x/8))",)

# mm key -> our key, per section
_LAYOUT_KEYS = {"scheme": "scheme", "gap": "gap", "scatter": "scatter", "molecule": "molecule",
                "blast": "blast", "polarity": "polarity", "left placement": "left_placement",
                "right placement": "right_placement", "result placement": "result_placement"}
_PLACEMENT_KEYS = {k: v for k, v in _LAYOUT_KEYS.items() if k in MM_PLACEMENT}
_ANIM_KEYS = {"alg": "alg", "fuse": "fuse", "speed": "speed", "hide inputs": "hide_inputs",
              "spin": "spin"}
_VIZ_KEYS = {"sensitivity": "sensitivity", "min size": "min_size", "min light": "min_light",
             "max light": "max_light", "elem scale": "elem_scale", "zero hue": "zero_hue",
             "hue gap": "hue_gap", "hue spread": "hue_spread"}
_DECO_KEYS = {"legends": "legends", "shape": "shape_labels", "row guides": "row_guides",
              "flow guides": "flow_guides"}
_DECO_UNSUPPORTED = {
    "spotlight": "we have no hover spotlight (values show in the render itself)",
    "lens size": "we have no magnifier lens",
    "magnification": "we have no magnifier lens",
    "interior spotlight": "we have no hover spotlight",
    "axes": "we draw no x/y/z axis lines",
}
_ROOT_KEYS = {"expr", "name", "epilog", "left", "right", "anim", "block", "layout", "deco", "viz"}
_SILENT_KEYS = {"cam", "compress", "diag", "folder", "count", "total", "sync_expr", "is_child",
                "matmul", "getGlobalAbsmax"}
_LEAF_KEYS = {"name", "matmul", "h", "w", "init", "url", "expr", "min", "max", "dropout"}
_STALE_LEAF_KEYS = _LEAF_KEYS - {"name", "matmul"}  # left on matmul nodes by mm's GUI

# The type of every mm key, by its last path segment (the compressed form carries strings).
_BOOL_KEYS = {"matmul", "hide inputs", "shape", "interior spotlight", "axes", "compress"}
_NUMBER_KEYS = {"h", "w", "min", "max", "dropout", "speed", "spin", "i blocks", "j blocks",
                "k blocks", "gap", "scatter", "molecule", "blast", "legends", "spotlight",
                "row guides", "flow guides", "lens size", "magnification", "min size",
                "min light", "max light", "elem scale", "zero hue", "hue gap", "hue spread",
                "x", "y", "z"}

# mm's spin turns the camera by (elapsed ms) * spin / 20000 radians; ours is seconds per turn.
_SPIN_SECONDS = 40 * math.pi


# --- reading text: links, compressed links, config files, JSON ------------------------------

def mm_params_from_text(text: str, *, allow_network: bool = True) -> dict:
    """mm's params tree from an mm URL (`?params=`, compressed, `?config=`), a bare query
    string, pasted JSON, or the path of a file holding any of those."""
    return _params_from_text(text, allow_network, depth=0)


def _params_from_text(text: str, allow_network: bool, depth: int) -> dict:
    if not isinstance(text, str):
        raise MMError(f"mm link: expected text, got {type(text).__name__}")
    s = text.strip()
    if not s:
        raise MMError("mm link: nothing to import (paste an mm URL or its params JSON)")
    if s.startswith("{"):
        return _check_params(_json(s, "pasted JSON"), "pasted JSON")
    if depth == 0 and "\n" not in s and _is_file(s):
        path = Path(s).expanduser()
        try:
            return _params_from_text(_read_local(path, "file"), allow_network, depth + 1)
        except _NotALink:   # named by the file, not by its contents (which may be private)
            raise MMError(f"mm link: file '{path}' holds no mm URL, query string or params "
                          "JSON") from None
    query = _query_of(s)
    if query is None:
        raise _NotALink(f"mm link: {_short(s)!r} is not an mm URL (…index.html?params=…), "
                        "a query string, JSON text or an existing file")
    return _params_from_query(query, allow_network)


class _NotALink(MMError):
    """A file's text is not a link: reported by the file's name."""


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "…"


def _is_file(s: str) -> bool:
    try:
        return Path(s).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _query_of(s: str) -> str | None:
    s = s.split("#", 1)[0]
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", s) or "?" in s:
        if "?" not in s:
            raise _NotALink(f"mm link: {_short(s)!r} has no '?params=', '?config=' or "
                            "compressed parameters after the page address")
        return s.split("?", 1)[1]
    if re.match(r"(params|config|\d+(\.\d+)?)=", s):
        return s
    return None


def _params_from_query(query: str, allow_network: bool) -> dict:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise MMError("mm link: the query after '?' is empty")
    keys = dict(pairs)
    if "params" in keys:
        return _check_params(_json(keys["params"], "the link's params="), "the link's params=")
    if "config" in keys:
        return _check_params(_load_config(keys["config"], allow_network),
                             f"config {keys['config']!r}")
    return _check_params(uncompress(pairs), "the compressed link")


# JSON levels a params tree may use: a level per matmul plus a few for settings groups
MAX_JSON_DEPTH = 2 * exprmod.MAX_DEPTH + 8


def _json(text: str, what: str) -> Any:
    if json_depth(text.encode("utf-8", "surrogatepass")) > MAX_JSON_DEPTH:
        raise MMError(f"mm link: {what} nests more than {MAX_JSON_DEPTH} levels deep (the "
                      "depth limit)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MMError(f"mm link: {what} is not valid JSON ({e.msg} at line {e.lineno}, "
                      f"column {e.colno})") from None
    except RecursionError:
        raise MMError(f"mm link: {what} is nested too deeply") from None


def _check_params(params: Any, what: str) -> dict:
    if not isinstance(params, dict):
        raise MMError(f"mm link: {what} is not a JSON object of mm parameters")
    if "expr" not in params:
        raise MMError(f"mm link: {what} has no 'expr' (mm parameters always carry the "
                      "expression, e.g. \"expr\": \"L @ R\")")
    if not isinstance(params["expr"], str):
        raise MMError(f"mm link: {what}: 'expr' must be a string, got {params['expr']!r}")
    return params


def _read_local(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(TEXT_MAX_BYTES + 1)
    except OSError as e:
        raise MMError(f"mm link: {what} '{path}' cannot be read: {e.strerror}") from None
    if len(raw) > TEXT_MAX_BYTES:
        raise MMError(f"mm link: {what} '{path}' is larger than {TEXT_MAX_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MMError(f"mm link: {what} '{path}' is not UTF-8 text") from None


def _load_config(value: str, allow_network: bool) -> Any:
    """`?config=`: JSON from an http(s) URL (if allowed) or from a local file."""
    where = f"config {_short(value)!r}"
    scheme = urllib.parse.urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        if not allow_network:
            raise MMError(network_off(f"mm link: {where} must be downloaded",
                                      "or save the JSON and give its path"))
        return _json(_download(value, where), where)
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(value).path))
        return _json(_read_local(path, "config file"), where)
    if scheme and not re.fullmatch(r"[A-Za-z]", scheme):  # 'C:' is a Windows drive, not a scheme
        raise MMError(f"mm link: {where} is a {scheme}: URL; only http(s) URLs and local files "
                      "are read")
    path = Path(value).expanduser()
    if not _is_file(value):
        raise MMError(f"mm link: {where} is neither an http(s) URL nor an existing file")
    return _json(_read_local(path, "config file"), where)


def _download(url: str, where: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "mm_blender"})
    try:
        with urllib.request.urlopen(request, timeout=CONFIG_TIMEOUT_S) as response:
            raw = response.read(CONFIG_MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise MMError(f"mm link: {where}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise MMError(f"mm link: {where} could not be downloaded ({reason})") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise MMError(f"mm link: {where} is larger than {CONFIG_MAX_BYTES} bytes; "
                      "not an mm params file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MMError(f"mm link: {where} is not UTF-8 text") from None


# --- the compressed flat form ---------------------------------------------------------------

def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, prefix + key + "."))
        else:
            out.append((prefix + key, value))
    return out


def _unflatten(flat: dict[str, Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MMError(f"mm link: compressed key {path!r} runs through a value")
        if isinstance(node.get(last), dict):
            raise MMError(f"mm link: compressed key {path!r} is both a value and a group")
        node[last] = value
    return tree


def _js_text(value: Any) -> str:
    """A value as JavaScript's String() writes it (what URLSearchParams carries)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def compress(params: dict) -> list[tuple[str, str]]:
    """mm's compressed flat form of a params tree, as (key, value) query pairs: each dotted
    path is written `<number of its parent path>.<number of its last key>`, and the
    numbers' names follow as `name=number` pairs."""
    names: dict[str, str] = {}

    def number(name: str) -> str:
        if name not in names:
            names[name] = str(len(names))
        return names[name]

    pairs = []
    for path, value in _flatten(params):
        parent, dot, last = path.rpartition(".")
        key = f"{number(parent)}.{number(last)}" if dot else number(path)
        pairs.append((key, _js_text(value)))
    pairs.extend((name, num) for name, num in names.items())
    return pairs


def uncompress(pairs: list[tuple[str, str]] | dict[str, str]) -> dict:
    """A params tree from mm's compressed flat form (values typed as mm types them)."""
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    names: dict[str, str] = {}
    props: list[tuple[str, str]] = []
    for key, value in items:
        if re.fullmatch(r"\d+(\.\d+)?", key):
            props.append((key, value))
        else:
            names[value] = key
    if not props:
        raise MMError("mm link: no params=, config= or compressed (numbered) parameters found")
    flat = {}
    for key, value in props:
        parts = key.split(".")
        missing = [p for p in parts if p not in names]
        if missing:
            raise MMError(f"mm link: compressed key {key!r} uses number {missing[0]}, which the "
                          "link's name table does not define (is the link cut short?)")
        path = ".".join(names[p] for p in parts)
        flat[path] = _typed(path, value)
    return _unflatten(flat)


def _typed(path: str, text: str) -> Any:
    key = path.rpartition(".")[2]
    if key in _BOOL_KEYS:
        return text == "true"
    if key in _NUMBER_KEYS:
        return _number_text(text, path)
    return text


def _number_text(text: str, where: str) -> int | float:
    s = text.strip()
    if s == "":
        return 0  # as JavaScript's Number('')
    try:
        x = float(s)
    except ValueError:
        raise MMError(f"mm link: {where} = {_short(text)!r} is not a number") from None
    return int(x) if x.is_integer() and abs(x) < 1 << 53 else x


# --- mm params -> our preset dict ------------------------------------------------------------

class _Importer:
    """One import: walks mm's tree, collects our tables and the notes on what was dropped."""

    def __init__(self, params: dict):
        self.params = params
        self.dropped: list[str] = []
        self.leaves: dict[str, dict] = {}
        self.matmuls: dict[str, dict] = {}
        self.placements: dict[str, dict] = {}   # non-root matmuls' effective placements
        self.placement_conflicts: list[str] = []
        self.scheme = "blocks"
        self.custom = False
        self.mismatched_layouts: list[str] = []
        self.ignored: dict[str, list[str]] = {}
        self.renames: dict[int, str] = {}       # id of an mm leaf node -> its new name

    def drop(self, note: str) -> None:
        if note not in self.dropped:
            self.dropped.append(note)

    # typed reads with mm's defaults; bad values are errors naming the key
    def num(self, table: dict, key: str, default, where: str, lo=None, hi=None) -> float:
        value = table.get(key, default)
        if isinstance(value, str):
            value = _number_text(value, f"{where}.{key}")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise MMError(f"mm link: {where}.{key} must be a finite number, got {value!r}")
        if lo is not None and value < lo or hi is not None and value > hi:
            clamped = min(max(value, lo if lo is not None else value),
                          hi if hi is not None else value)
            self.drop(f"{where}.{key} = {value} is outside our range; using {clamped}")
            value = clamped
        return value

    def whole(self, table: dict, key: str, default, where: str, lo=None, hi=None) -> int:
        value = self.num(table, key, default, where, lo, hi)
        if value != int(value):
            self.drop(f"{where}.{key} = {value} is not a whole number; using {int(value)}")
        return int(value)

    def flag(self, table: dict, key: str, default: bool, where: str) -> bool:
        value = table.get(key, default)
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise MMError(f"mm link: {where}.{key} must be true or false, got {value!r}")
        return value

    def choice(self, table: dict, key: str, default: str, choices, where: str) -> str:
        value = table.get(key, default)
        if value not in choices:
            self.drop(f"{where}.{key} = {value!r} is not one of ours "
                      f"({', '.join(choices)}); using {default!r}")
            return default
        return value

    def section(self, name: str) -> dict:
        table = self.params.get(name, {})
        if not isinstance(table, dict):
            raise MMError(f"mm link: '{name}' must be a group of settings, got {table!r}")
        return table

    def unknown_keys(self, table: dict, known, where: str, section: str = "") -> None:
        """Keys mm does not use either; one note per key, naming every place it was seen."""
        for key in table:
            if key not in known:
                self.ignored.setdefault(f"{section}{key}", []).append(where)

    def ignored_notes(self) -> None:
        for key, places in self.ignored.items():
            self.drop(f"{key!r} in {', '.join(places)}: not an mm setting; ignored")

    # --- the tree ---------------------------------------------------------------------------

    def run(self, name: str) -> tuple[dict, list[str]]:
        p = self.params
        self.unknown_keys(p, _ROOT_KEYS | _SILENT_KEYS | _STALE_LEAF_KEYS, "the root")
        camera = camera_direction(p.get("cam"))
        if "cam" in p and camera is None:
            self.drop("cam: not a camera position (x, y, z numbers); mm's default view is used")

        layout = self.read_layout()
        blocks = self.read_blocks()
        anim = self.read_anim()
        viz = self.read_viz()
        deco = self.read_deco()

        tree = self.mm_tree()
        self.renames = self.plan_renames(tree)
        text = self.expr_text(tree, root=True)
        try:
            ours = exprmod.parse(text)
        except MMError as e:
            raise MMError(f"mm link: the expression {exprmod.shown(text)} from its params tree: "
                          f"{e}") from None
        expr_text = self.choose_expr(text, ours)

        root_place = {ours: layout[ours] for ours in _PLACEMENT_KEYS.values()}
        self.walk(tree, ours, None, blocks, root_place)

        self.ignored_notes()
        data: dict[str, Any] = {"name": name, "expr": expr_text}
        if self.mismatched_layouts and not self.custom:
            self.drop(f"layout.scheme {self.scheme!r} -> 'custom': the link's stored placements "
                      f"of {', '.join(self.mismatched_layouts)} differ from what {self.scheme!r} "
                      "derives (mm draws the stored ones); kept them per matmul")
            layout["scheme"] = "custom"
        if layout["scheme"] == "custom":
            for mm_name, placement in self.placements.items():
                self.matmuls[mm_name].update(placement)
            for note in self.placement_conflicts:
                self.drop(note)
        data["layout"] = layout
        data["blocks"] = blocks
        data["anim"] = anim
        data["viz"] = viz
        data["deco"] = deco
        if camera is not None:
            data["look"] = {"camera": camera}
        data["matrix"] = self.leaves
        matmuls = {k: v for k, v in self.matmuls.items() if v}
        if matmuls:
            data["matmul"] = matmuls
        return data, self.dropped

    def read_layout(self) -> dict:
        t = self.section("layout")
        w = "layout"
        self.unknown_keys(t, _LAYOUT_KEYS, "the root", "layout.")
        self.scheme = self.choice(t, "scheme", MM_LAYOUT["scheme"], specmod.SCHEMES, w)
        self.custom = self.scheme == "custom"
        return {
            "scheme": self.scheme,
            "gap": float(self.num(t, "gap", MM_LAYOUT["gap"], w, 0, 64)),
            "scatter": float(self.num(t, "scatter", MM_LAYOUT["scatter"], w, 0, 1024)),
            "molecule": self.whole(t, "molecule", MM_LAYOUT["molecule"], w, 1, 1000),
            "blast": float(self.num(t, "blast", MM_LAYOUT["blast"], w, -2, 2)),
            **self.read_placement(t, MM_PLACEMENT, w),
        }

    def read_placement(self, t: dict, base: dict, where: str) -> dict:
        choices = {"polarity": specmod.POLARITIES, "left placement": specmod.LEFT_PLACEMENTS,
                   "right placement": specmod.RIGHT_PLACEMENTS,
                   "result placement": specmod.RESULT_PLACEMENTS}
        return {ours: self.choice(t, key, base[key], choices[key], where)
                for key, ours in _PLACEMENT_KEYS.items()}

    def read_blocks(self) -> dict:
        t = self.section("block")
        self.unknown_keys(t, MM_BLOCK, "the root", "block.")
        return {axis: self.whole(t, f"{axis} blocks", 1, "block", 1, 64) for axis in "ijk"}

    def read_anim(self) -> dict:
        t = self.section("anim")
        w = "anim"
        self.unknown_keys(t, _ANIM_KEYS, "the root", "anim.")
        top_algs = tuple(a for a in specmod.ALGORITHMS if a != "inherit")
        spin = self.num(t, "spin", MM_ANIM["spin"], w)
        return {
            "alg": self.choice(t, "alg", MM_ANIM["alg"], top_algs, w),
            "fuse": self.choice(t, "fuse", MM_ANIM["fuse"], specmod.FUSIONS, w),
            "speed": float(self.num(t, "speed", MM_ANIM["speed"], w, 0.01, 1000)),
            "hide_inputs": self.flag(t, "hide inputs", MM_ANIM["hide inputs"], w),
            "spin": _SPIN_SECONDS / spin if spin else 0.0,
        }

    def read_viz(self) -> dict:
        t = self.section("viz")
        w = "viz"
        self.unknown_keys(t, _VIZ_KEYS, "the root", "viz.")
        out: dict[str, Any] = {"sensitivity": self.choice(
            t, "sensitivity", MM_VIZ["sensitivity"], specmod.SENSITIVITIES, w)}
        for key, ours in _VIZ_KEYS.items():
            if key == "sensitivity":
                continue
            lo, hi = (0.01, 10) if key == "elem scale" else (-1, 1) if "hue" in key else (0, 1)
            out[ours] = float(self.num(t, key, MM_VIZ[key], w, lo, hi))
        return out

    def read_deco(self) -> dict:
        t = self.section("deco")
        w = "deco"
        self.unknown_keys(t, {**_DECO_KEYS, **_DECO_UNSUPPORTED}, "the root", "deco.")
        for key, reason in _DECO_UNSUPPORTED.items():
            if key in t and t[key] not in (False, 0, "false"):
                self.drop(f"deco.{key} = {t[key]!r}: {reason}")
        return {
            "legends": float(self.num(t, "legends", MM_DECO["legends"], w, 0)),
            "shape_labels": self.flag(t, "shape", MM_DECO["shape"], w),
            "row_guides": float(self.num(t, "row guides", MM_DECO["row guides"], w, 0, 1)),
            "flow_guides": float(self.num(t, "flow guides", MM_DECO["flow guides"], w, 0, 1)),
        }

    def mm_tree(self) -> dict:
        """The params tree; with only an expr (no left/right), mm's defaults for every node."""
        p = self.params
        if "left" in p or "right" in p:
            if not (isinstance(p.get("left"), dict) and isinstance(p.get("right"), dict)):
                raise MMError("mm link: the params need both 'left' and 'right' groups")
            return p
        try:
            parsed = exprmod.parse(p["expr"])
        except MMError as e:
            raise MMError(f"mm link: {e}") from None

        def node(n: exprmod.Node, is_left: bool) -> dict:
            if isinstance(n, exprmod.Leaf):
                return {**(MM_LEFT if is_left else MM_RIGHT), "name": n.name}
            return {"name": n.name, "matmul": True, "epilog": "none",
                    "left": node(n.left, True), "right": node(n.right, False)}

        tree = node(parsed, True)
        tree.pop("matmul")
        return {**p, **tree, "epilog": p.get("epilog", "none")}

    @staticmethod
    def is_matmul(p: dict, root: bool = False) -> bool:
        if root:
            return True
        if "matmul" in p:
            return p["matmul"] is True or p["matmul"] == "true"
        return "left" in p and "right" in p

    def node_name(self, p: dict, where: str) -> str:
        name = p.get("name")
        if not isinstance(name, str) or not name:
            raise MMError(f"mm link: {where} has no name")
        return name

    def expr_text(self, p: dict, root: bool = False, where: str = "params") -> str:
        """The expression mm's genExpr writes for a node (its own name only if not a default)."""
        if not self.is_matmul(p, root):
            name = self.renames.get(id(p)) or self.node_name(p, where)
            if not exprmod.NAME_RE.fullmatch(name):
                raise MMError(f"mm link: {where}: {name!r} is not a matrix name "
                              "(a word character, then letters, digits or . - ! # $ % ^ & / [ ])")
            return name
        for side in ("left", "right"):
            if not isinstance(p.get(side), dict):
                raise MMError(f"mm link: {where} is a matmul without a '{side}' group")
        left, right = p["left"], p["right"]
        lt = self.expr_text(left, where=f"{where}.left")
        if self.is_matmul(left) and self.named(left):
            lt = f"({lt})"
        rt = self.expr_text(right, where=f"{where}.right")
        if self.is_matmul(right):
            rt = f"({rt})"
        return f"{p['name']} = {lt} @ {rt}" if self.named(p) else f"{lt} @ {rt}"

    def leaf_nodes(self, p: dict, root: bool = False):
        if self.is_matmul(p, root):
            for side in ("left", "right"):
                if isinstance(p.get(side), dict):
                    yield from self.leaf_nodes(p[side])
        else:
            yield p

    def plan_renames(self, tree: dict) -> dict[int, str]:
        """New names for later occurrences of a leaf name with another shape: one name is one
        matrix here, while mm lets each occurrence have its own (attention decoding uses
        `input` as 1 x d for Q and as n x d for V)."""
        leaves = list(self.leaf_nodes(tree, root=True))
        taken = {leaf.get("name") for leaf in leaves}
        shapes: dict[str, list[tuple[tuple, str]]] = {}
        renames: dict[int, str] = {}
        for leaf in leaves:
            name = leaf.get("name")
            if not isinstance(name, str):
                continue
            shape = (leaf.get("h", 32), leaf.get("w", 32))
            variants = shapes.setdefault(name, [])
            if not variants:
                variants.append((shape, name))
                continue
            new = next((n for s, n in variants if s == shape), None)
            if new is None:
                n = len(variants) + 1
                while f"{name}_{n}" in taken:
                    n += 1
                new = f"{name}_{n}"
                taken.add(new)
                variants.append((shape, new))
                self.drop(f"leaf {name!r} appears as {variants[0][0][0]}x{variants[0][0][1]} "
                          f"and as {shape[0]}x{shape[1]}; one name is one matrix here, so the "
                          f"{shape[0]}x{shape[1]} one is renamed {new!r} in the expression")
            if new != name:
                renames[id(leaf)] = new
        return renames

    def named(self, p: dict) -> bool:
        """Whether a matmul has a name of its own. mm's default names ('A @ B', 'A @ (B @ C)')
        contain spaces, which an own name cannot (it must be written `name = ...`)."""
        name = p.get("name")
        if isinstance(name, str) and exprmod.NAME_RE.fullmatch(name):
            return True
        if isinstance(name, str) and "@" not in name:
            self.drop(f"matmul name {name!r} cannot be written in an expression; "
                      "using the default name")
        return False

    def choose_expr(self, text: str, ours: exprmod.MatMul) -> str:
        """The link's own expr text when it says the same as the tree, else the tree's."""
        given = self.params["expr"]
        if self.renames:
            return text
        try:
            parsed = exprmod.parse(given)
        except MMError:
            self.drop(f"expr {given!r} does not parse; used {text!r} from the params tree "
                      "(mm regenerates expr from the tree too)")
            return text
        if _shape_of(parsed) != _shape_of(ours):
            self.drop(f"expr {given!r} disagrees with the params tree; used {text!r} "
                      "(mm regenerates expr from the tree too)")
            return text
        return given

    def walk(self, p: dict, node: exprmod.Node, parent: str | None, blocks: dict,
             place: dict, is_left: bool = True, where: str = "params") -> None:
        """Record one node (ours: `node`) with its effective blocks, placement and alg."""
        if isinstance(node, exprmod.Leaf):
            self.add_leaf(p, node.name, where, is_left)
            return
        table: dict[str, Any] = {}
        epi = p.get("epilog", "none")
        if epi == "softmax(tril(x/8))":
            epi = "softmax(tril(x/sqrt(k)))"
            k = self.width(p["left"])
            if k != 64:
                self.drop(f"'{node.name}': epilogue 'softmax(tril(x/8))' -> "
                          f"'softmax(tril(x/sqrt(k)))' (k = {k}, so scaled by 1/sqrt({k}), "
                          "not 1/8)")
        elif epi not in specmod.EPILOGUES:
            self.drop(f"'{node.name}': epilogue {epi!r} is not one we have; using 'none'")
            epi = "none"
        if epi != "none":
            table["epilogue"] = epi

        placement: dict = {}
        if parent is not None:
            self.check_child_extras(p, node.name)
            anim = p.get("anim", {}) if isinstance(p.get("anim"), dict) else {}
            node_alg = anim.get("alg", "inherit")
            if node_alg not in specmod.ALGORITHMS:
                self.drop(f"'{node.name}': anim.alg {node_alg!r} is not one we have; "
                          "using 'inherit'")
                node_alg = "inherit"
            if node_alg != "inherit":
                table["alg"] = node_alg
            block = p.get("block", {}) if isinstance(p.get("block"), dict) else {}
            k = self.whole(block, "k blocks", 1, f"'{node.name}'.block", 1, 64)
            # i and j blocks follow from the parent (mm overwrites stored ones the same way)
            i, j = (blocks["i"], blocks["k"]) if is_left else (blocks["k"], blocks["j"])
            for axis, value in (("i", i), ("j", j)):
                stored = block.get(f"{axis} blocks")
                if stored is not None and stored != value:
                    self.drop(f"'{node.name}': stored {axis} blocks {stored} ignored; mm (and "
                              f"we) take {value} from '{parent}'")
            if k != 1:
                table["k_blocks"] = k
            blocks = {"i": i, "j": j, "k": k}

            # mm merges a node's stored layout over its parent's and draws that
            stored = p.get("layout", {}) if isinstance(p.get("layout"), dict) else {}
            parent_mm = {mm: place[ours] for mm, ours in _PLACEMENT_KEYS.items()}
            placement = self.read_placement({**parent_mm, **stored}, parent_mm,
                                            f"'{node.name}'.layout")
            if self.scheme != "custom" and child_placement(place, self.scheme,
                                                           is_left) != placement:
                self.mismatched_layouts.append(repr(node.name))
            place = placement
        self.record_matmul(node.name, table, placement, where)
        self.walk(p["left"], node.left, node.name, blocks, place, True, f"{where}.left")
        self.walk(p["right"], node.right, node.name, blocks, place, False, f"{where}.right")

    def width(self, p: dict) -> int:
        return self.width(p["right"]) if self.is_matmul(p) else p.get("w", 32)

    def check_child_extras(self, p: dict, name: str) -> None:
        """Per-node viz/deco/anim overrides (mm merges them into that subtree) are not kept."""
        for section, defaults in (("viz", MM_VIZ), ("deco", MM_DECO)):
            if isinstance(p.get(section), dict):
                root = {**defaults, **self.section(section)}
                diff = {k: v for k, v in p[section].items() if root.get(k) != v}
                if diff:
                    self.drop(f"'{name}': its own {section} settings {diff} are not kept "
                              f"(one [{section}] per scene)")
        anim = p.get("anim")
        if isinstance(anim, dict):
            root = {**MM_ANIM, **self.section("anim")}
            self.unknown_keys(anim, _ANIM_KEYS, f"'{name}'", "anim.")
            for key, value in anim.items():
                if key in _ANIM_KEYS and key != "alg" and root.get(key) != value:
                    self.drop(f"'{name}': its own anim.{key} = {value!r} is not kept "
                              "(animation settings are per scene)")
        if "block" in p and isinstance(p["block"], dict):
            self.unknown_keys(p["block"], MM_BLOCK, f"'{name}'", "block.")
        self.unknown_keys(p, _ROOT_KEYS | _SILENT_KEYS | _STALE_LEAF_KEYS, f"'{name}'")

    def record_matmul(self, name: str, table: dict, placement: dict, where: str) -> None:
        if name in self.matmuls:
            if self.matmuls[name] != table:
                self.drop(f"matmul {name!r} appears again at {where} with other settings "
                          f"({table}); kept the first ({self.matmuls[name]})")
            if self.placements[name] != placement:
                self.placement_conflicts.append(
                    f"matmul {name!r} appears again at {where} with another placement "
                    f"({placement}); kept the first")
            return
        self.matmuls[name] = table
        self.placements[name] = placement

    def add_leaf(self, p: dict, name: str, where: str, is_left: bool) -> None:
        defaults = MM_LEFT if is_left else MM_RIGHT
        self.unknown_keys(p, _LEAF_KEYS | _SILENT_KEYS | {"epilog", "anim", "block", "layout",
                                                          "viz", "deco"}, f"leaf '{name}'")
        w = f"leaf '{name}'"
        table: dict[str, Any] = {
            "h": self.whole(p, "h", defaults["h"], w, 1, specmod.MAX_SIDE),
            "w": self.whole(p, "w", defaults["w"], w, 1, specmod.MAX_SIDE),
        }
        init = p.get("init", defaults["init"])
        formula = p.get("expr", "") or ""
        url = p.get("url", "") or ""
        if init in ("file", "zeros", "ones", "transpose") or init not in INITIALISERS:
            self.drop(f"{w}: init {init!r} is not one of mm's (mm draws zeros); using 'zeros'")
            init = "zeros"
        elif init == "expr" and not str(formula).strip():
            self.drop(f"{w}: init 'expr' with an empty formula (mm draws zeros); using 'zeros'")
            init = "zeros"
        elif init == "url" and not str(url).strip():
            self.drop(f"{w}: init 'url' with no url (mm draws zeros); using 'zeros'")
            init = "zeros"
        table["init"] = init
        if init == "expr":
            table["formula"] = str(formula)
        if init == "url":
            table["url"] = str(url)
        lo = float(self.num(p, "min", defaults["min"], w))
        hi = float(self.num(p, "max", defaults["max"], w))
        dropout = float(self.num(p, "dropout", defaults["dropout"], w, 0, 1))
        if lo != -1:
            table["min"] = lo
        if hi != 1:
            table["max"] = hi
        if dropout:
            table["dropout"] = dropout
        if name in self.leaves:
            if self.leaves[name] != table:
                first = self.leaves[name]
                diff = {k: table.get(k) for k in set(first) | set(table)
                        if first.get(k) != table.get(k)}
                self.drop(f"leaf {name!r} appears again at {where} with other settings "
                          f"{diff}; one name is one matrix here, kept the first")
            return
        self.leaves[name] = table


def _shape_of(node: exprmod.Node):
    if isinstance(node, exprmod.Leaf):
        return node.name
    return (node.name, _shape_of(node.left), _shape_of(node.right))


def child_placement(parent: dict, scheme: str, is_left: bool) -> dict:
    """A child matmul's placement (a dict of our four placement keys) as the layout scheme
    derives it from its parent's; `custom` children without their own derive as `blocks`."""
    derived = layout.child_placement(specmod.Placement(**parent),
                                     "blocks" if scheme == "custom" else scheme, is_left)
    return dataclass_placement(derived)


def spec_dict_from_mm(params: dict, *, name: str = "imported") -> tuple[dict, list[str]]:
    """Our preset dict (what `spec.from_dict` reads) from mm's params tree, and notes on what
    could not be kept. mm's defaults fill anything the params leave out."""
    _check_params(params, "the params")
    check_tree_depth(params)
    try:
        return _Importer(params).run(name)
    except RecursionError:
        raise MMError("mm link: the params tree is nested too deeply") from None


def check_tree_depth(params: dict) -> None:
    """Refuse a params tree deeper than expressions may be, before anything walks it (the
    importer recurses), counting levels without recursion."""
    deepest, stack = 0, [(params, 1)]   # the root is one matmul
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > exprmod.MAX_DEPTH:
            raise MMError(f"mm link: the params tree nests more than {exprmod.MAX_DEPTH} "
                          "matmuls deep (the depth limit)")
        for side in ("left", "right"):
            child = node.get(side)
            if isinstance(child, dict) and ("left" in child or "right" in child):
                stack.append((child, depth + 1))


# --- our spec -> mm params -------------------------------------------------------------------

_TRANSPOSED_INIT = {"rows": "cols", "cols": "rows", "row major": "col major",
                    "col major": "row major", "tril mask": "triu mask", "triu mask": "tril mask",
                    "eye": "eye", "uniform": "uniform", "gaussian": "gaussian",
                    "pt linear": "pt linear", "zeros": "zeros", "ones": "ones"}
_RANDOM_INITS = ("uniform", "gaussian", "pt linear")


def _mm_leaf(spec: specmod.Spec, leaf: specmod.LeafSpec, notes: list[str]) -> dict:
    init, formula, url = leaf.init, leaf.formula, leaf.url
    lo, hi, dropout = leaf.min, leaf.max, leaf.dropout
    if init == "transpose":
        src = spec.leaves[leaf.source]
        lo, hi, dropout = src.min, src.max, src.dropout
        if src.init in _TRANSPOSED_INIT:
            init = _TRANSPOSED_INIT[src.init]
            if init in _RANDOM_INITS:
                notes.append(f"leaf {leaf.name!r}: the transpose of {src.name!r} is exported as "
                             f"its own {init!r} matrix (mm draws it separately)")
        elif src.init == "diff":
            init, formula = "expr", "i == j ? 1 : (j == i + 1 ? -1 : 0)"
        elif src.init == "expr":
            # swap the roles of i/j and h/w by calling the source formula with them swapped
            init, formula = "expr", f"((i, j, h, w) => ({src.formula}))(j, i, w, h)"
        else:
            notes.append(f"leaf {leaf.name!r}: init 'transpose' of a {src.init!r} leaf has no "
                         "mm equivalent; exported as 'gaussian'")
            init = "gaussian"
    if init == "zeros":
        init, formula = "expr", "0"
    elif init == "ones":
        init, formula = "expr", "1"
    elif init == "file":
        notes.append(f"leaf {leaf.name!r}: init 'file' ({leaf.file}"
                     f"{' / ' + leaf.tensor if leaf.tensor else ''}) has no mm equivalent "
                     "(mm reads CSV over http only); exported as 'gaussian'")
        init = "gaussian"
    return {"name": leaf.name, "matmul": False, "h": leaf.h, "w": leaf.w, "init": init,
            "url": url if init == "url" else "", "expr": formula if init == "expr" else "",
            "min": lo, "max": hi, "dropout": dropout}


def mm_params_from_spec(spec: specmod.Spec, notes: list[str] | None = None) -> dict:
    """mm's params tree for a spec. What mm cannot show is appended to `notes` (and logged)."""
    notes = [] if notes is None else notes
    start = len(notes)
    L, V, D, A = spec.layout, spec.viz, spec.deco, spec.anim

    def place_of(ms: specmod.MatmulSpec, parent: dict, is_left: bool) -> dict:
        if L.scheme == "custom" and ms.placement is not None:
            return dataclass_placement(ms.placement)
        return child_placement(parent, L.scheme, is_left)

    def mm_node(node: exprmod.Node, blocks: dict, place: dict, is_left: bool, root: bool):
        if isinstance(node, exprmod.Leaf):
            return _mm_leaf(spec, spec.leaves[node.name], notes)
        ms = spec.matmuls[node.name]
        if root:
            mine_blocks, mine_place = blocks, place
        else:
            i, j = (blocks["i"], blocks["k"]) if is_left else (blocks["k"], blocks["j"])
            mine_blocks = {"i": i, "j": j, "k": ms.k_blocks}
            mine_place = place_of(ms, place, is_left)
        out: dict[str, Any] = {"name": node.name}
        if not root:
            out["matmul"] = True
        out["epilog"] = ms.epilogue
        out["left"] = mm_node(node.left, mine_blocks, mine_place, True, False)
        out["right"] = mm_node(node.right, mine_blocks, mine_place, False, False)
        if not root:
            out["anim"] = {"alg": ms.alg}
            out["block"] = {"i blocks": mine_blocks["i"], "k blocks": mine_blocks["k"],
                            "j blocks": mine_blocks["j"]}
            out["layout"] = {mm: mine_place[ours] for mm, ours in _PLACEMENT_KEYS.items()}
        return out

    root_place = dataclass_placement(L.placement)
    root_blocks = {"i": spec.blocks.i, "j": spec.blocks.j, "k": spec.blocks.k}
    tree = mm_node(spec.tree, root_blocks, root_place, True, True)
    params: dict[str, Any] = {"expr": exprmod.to_text(spec.tree), **tree}
    params["anim"] = {"fuse": A.fuse, "speed": A.speed, "hide inputs": A.hide_inputs,
                      "alg": A.alg, "spin": _SPIN_SECONDS / A.spin if A.spin else 0}
    params["block"] = {"i blocks": spec.blocks.i, "k blocks": spec.blocks.k,
                       "j blocks": spec.blocks.j}
    params["layout"] = {"scheme": L.scheme, "gap": L.gap, "scatter": L.scatter,
                        "molecule": L.molecule, "blast": L.blast,
                        **{mm: root_place[ours] for mm, ours in _PLACEMENT_KEYS.items()}}
    params["deco"] = {**MM_DECO, "legends": D.legends, "shape": D.shape_labels,
                      "row guides": D.row_guides, "flow guides": D.flow_guides}
    params["viz"] = {mm: getattr(V, ours) for mm, ours in _VIZ_KEYS.items()}
    params["cam"] = _camera(spec)
    params["compress"] = False

    # what mm cannot show
    counts: dict[str, int] = {}
    for leaf in exprmod.leaves(spec.tree):
        counts[leaf.name] = counts.get(leaf.name, 0) + 1
    for leaf_name, n in counts.items():
        leaf = spec.leaves[leaf_name]
        if n > 1 and (leaf.init in _RANDOM_INITS or leaf.dropout):
            notes.append(f"leaf {leaf_name!r} appears {n} times; mm draws its random values "
                         "separately for each occurrence")
    if any(leaf.init in _RANDOM_INITS or leaf.dropout for leaf in spec.leaves.values()):
        notes.append("random initialisers: mm does not take a seed, so its values differ")
    if V.colormap != "mm":
        notes.append(f"viz.colormap {V.colormap!r}: mm has only its own hue mapping")
    if V.cell_shape != "sphere":
        notes.append(f"viz.cell_shape {V.cell_shape!r}: mm draws round points")
    if spec.look != specmod.LookSpec():
        notes.append(f"look (background {spec.look.background!r}, view {spec.look.view!r}): "
                     "mm has a black background and its own camera")
    if spec.model is not None:
        notes.append(f"model {spec.model.model!r}: mm cannot capture real model data; the "
                     "leaves are exported with their initialisers")
    if A.frames_per_step or A.seconds:
        notes.append("anim.frames_per_step / anim.seconds: mm animates in real time by speed")
    for note in notes[start:]:
        log.info("mm export: %s", note)
    return params


def dataclass_placement(p: specmod.Placement) -> dict:
    """A Placement as a dict of its four keys."""
    return {"polarity": p.polarity, "left_placement": p.left_placement,
            "right_placement": p.right_placement, "result_placement": p.result_placement}


def camera_direction(cam) -> list[float] | None:
    """mm's camera (three.js world: y up, z toward the viewer, the scene turned over x) as
    our look.camera: the direction from the target to the camera in Blender's axes. The
    distance is not kept: we frame the camera to fit the picture."""
    if not isinstance(cam, dict):
        return None
    try:
        pos = [float(cam[a]) for a in "xyz"]
        t = cam.get("target") or {}
        target = [float(t.get(a, 0.0)) for a in "xyz"]
    except (KeyError, TypeError, ValueError):
        return None
    d = [pos[0] - target[0], -(pos[2] - target[2]), pos[1] - target[1]]
    norm = math.sqrt(sum(c * c for c in d))
    if not math.isfinite(norm) or norm == 0:
        return None
    return [round(c / norm, 4) for c in d]


def _camera(spec: specmod.Spec) -> dict:
    """The preset's viewpoint (look.camera) or mm's default (-1.5, 1.5, 1.5), at a distance
    scaled to the scene's extent."""
    extent = 0
    for node in exprmod.matmuls(spec.tree):
        extent += spec.shape(node.left)[1]
    h, w = spec.shape(spec.tree)
    size = max(32.0, (h + w + extent) / 3 * 1.2)
    if len(spec.look.camera) == 3:
        dx, dy, dz = spec.look.camera
        scale = 1.5 * size * math.sqrt(3) / (math.sqrt(dx * dx + dy * dy + dz * dz) or 1.0)
        return {"x": dx * scale, "y": dz * scale, "z": -dy * scale}
    return {"x": -1.5 * size, "y": 1.5 * size, "z": 1.5 * size}


def _query(params: dict) -> str:
    return urllib.parse.urlencode({"params": json.dumps(params, separators=(",", ":"))})


def mm_link_from_spec(spec: specmod.Spec, base: str = MM_URL,
                      notes: list[str] | None = None) -> str:
    """An mm URL showing the spec: `?params=<JSON>`, or the compressed form past mm's limit."""
    params = mm_params_from_spec(spec, notes)
    query = _query(params)
    if len(query) > URL_LIMIT:
        params["compress"] = True
        query = urllib.parse.urlencode(compress(params))
    return f"{base}?{query}"


# --- the CLI's door --------------------------------------------------------------------------

def import_mm(text: str, out_path: str | Path | None = None, name: str | None = None, *,
              allow_network: bool = True) -> tuple[dict, list[str]]:
    """Read an mm link (or JSON, or a file), check it as a spec, optionally write a preset
    TOML file. Returns the preset dict and the notes on what was dropped."""
    from .. import outputs
    from ..core import toml_write

    if out_path is not None:
        out_path = outputs.check_output(out_path, "preset", "preset")   # before any work
    params = mm_params_from_text(text, allow_network=allow_network)
    if name is None:
        name = Path(out_path).stem if out_path is not None else "imported"
    data, dropped = spec_dict_from_mm(params, name=name)
    origin = str(out_path) if out_path is not None else "<mm link>"
    specmod.from_dict(data, name=name, origin=origin,
                      base_dir=Path(out_path).parent if out_path is not None else None)
    if out_path is not None:
        header = ["# Imported from an mm link by mm_blender."]
        if dropped:
            header.append("# Not kept from the link:")
            header.extend(f"#   - {' '.join(note.split())}" for note in dropped)
        text_out = "\n".join(header) + "\n\n" + toml_write.dumps(data)
        outputs.write_bytes(out_path, text_out.encode("utf-8"), "preset")
    return data, dropped
