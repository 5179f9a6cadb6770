"""mm params -> our preset dict (what `spec.from_dict` reads), with notes on what could not
be kept; and `import_mm`, the CLI's and panel's door."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...errors import MMError
from ...core import expr as exprmod
from ...core import spec as specmod
from ...core.initialisers import INITIALISERS
from .compressed import _number_text
from .defaults import (MM_ANIM, MM_BLOCK, MM_DECO, MM_LAYOUT, MM_LEFT, MM_PLACEMENT, MM_RIGHT,
                       MM_VIZ, _ANIM_KEYS, _DECO_KEYS, _DECO_OVERLAY_KEYS, _LAYOUT_KEYS,
                       _LEAF_KEYS, _PLACEMENT_KEYS, _ROOT_KEYS, _SILENT_KEYS, _SPIN_SECONDS,
                       _STALE_LEAF_KEYS, _VIZ_KEYS)
from .views import camera_direction, child_placement


def _check_params(params: Any, what: str) -> dict:
    if not isinstance(params, dict):
        raise MMError(f"mm link: {what} is not a JSON object of mm parameters")
    if "expr" not in params:
        raise MMError(f"mm link: {what} has no 'expr' (mm parameters always carry the "
                      "expression, e.g. \"expr\": \"L @ R\")")
    if not isinstance(params["expr"], str):
        raise MMError(f"mm link: {what}: 'expr' must be a string, got {params['expr']!r}")
    return params


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
        self.unknown_keys(t, {**_DECO_KEYS, **_DECO_OVERLAY_KEYS}, "the root", "deco.")
        return {
            "legends": float(self.num(t, "legends", MM_DECO["legends"], w, 0)),
            "shape_labels": self.flag(t, "shape", MM_DECO["shape"], w),
            "row_guides": float(self.num(t, "row guides", MM_DECO["row guides"], w, 0, 1)),
            "flow_guides": float(self.num(t, "flow guides", MM_DECO["flow guides"], w, 0, 1)),
            "lens": "lens size" in t or "magnification" in t,
            "lens_size": float(self.num(t, "lens size", MM_DECO["lens size"], w, 0.01, 100)),
            "magnification": float(self.num(t, "magnification", MM_DECO["magnification"], w,
                                            0.1, 100)),
            "spotlight": float(self.num(t, "spotlight", MM_DECO["spotlight"], w, 0, 100)),
            "interior_spotlight": self.flag(t, "interior spotlight",
                                            MM_DECO["interior spotlight"], w),
            "axes": self.flag(t, "axes", MM_DECO["axes"], w),
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



def import_mm(text: str, out_path: str | Path | None = None, name: str | None = None, *,
              allow_network: bool = True) -> tuple[dict, list[str]]:
    """Read an mm link (or JSON, or a file), check it as a spec, optionally write a preset
    TOML file. Returns the preset dict and the notes on what was dropped."""
    from ... import outputs
    from ...core import toml_write
    from . import mm_params_from_text

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
