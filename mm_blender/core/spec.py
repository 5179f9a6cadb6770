"""The scene description: what the user asked for, validated, with mm's defaults.

A spec comes from a preset TOML file (schema in docs/PRESETS.md), from an mm link, or from the
panel. Everything downstream (values, layout, plan, scene) reads only a `Spec`.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MMError
from . import expr as exprmod

EPILOGUES = (
    "none", "relu", "gelu", "sigmoid", "silu", "tanh", "x**2", "x/k", "x/sqrt(k)",
    "layernorm", "softmax", "softmax(x/sqrt(k))", "softmax(tril(x/sqrt(k)))",
    # ours: rotary position embedding of a real model's Q (rows are positions) or K_t
    # (columns are positions), with [model] rope_theta
    "rope", "rope_t",
)
ALGORITHMS = (
    "none", "dotprod (row major)", "dotprod (col major)", "axpy", "vmprod", "mvprod",
    "vvprod", "inherit",
)
FUSIONS = ("none", "sync", "async")
SCHEMES = ("blocks", "zigzag", "wheel", "custom")
POLARITIES = ("negative", "positive")
LEFT_PLACEMENTS = ("left", "right")
RIGHT_PLACEMENTS = ("top", "bottom")
RESULT_PLACEMENTS = ("front", "back")
SENSITIVITIES = ("global", "local", "semilocal", "superlocal")
COLORMAPS = ("mm", "diverging")
CELL_SHAPES = ("cube", "sphere")
GROUPS = ("single", "expressions", "partitions", "attention", "lora", "other")
LOOKS = ("dark", "paper")
VIEWS = ("mm", "front", "top", "iso")

MAX_SIDE = 1 << 16


def _check_choice(value, choices, where):
    if value not in choices:
        raise MMError(f"{where}: {value!r} is not one of {', '.join(repr(c) for c in choices)}")
    return value


@dataclass
class LeafSpec:
    """One input matrix. Every occurrence of a name in the expression is the same matrix."""
    name: str
    h: int = 32
    w: int = 32
    init: str = "row major"
    min: float = -1.0
    max: float = 1.0
    dropout: float = 0.0
    formula: str = ""       # for init = "expr"
    file: str = ""          # for init = "file": .csv, .npy, .npz, .safetensors
    tensor: str = ""        # array name inside .npz / .safetensors
    url: str = ""           # for init = "url": mm's CSV over http(s)
    source: str = ""        # for init = "transpose": the leaf this one is the transpose of
    # init = "model": filled from the [model] table's attention head (see models/leaves.py)


@dataclass
class Placement:
    polarity: str = "negative"
    left_placement: str = "left"
    right_placement: str = "top"
    result_placement: str = "front"


@dataclass
class MatmulSpec:
    name: str
    epilogue: str = "none"
    alg: str = "inherit"
    k_blocks: int = 1
    # Only for scheme = "custom": this matmul's own placement (None: derive as `blocks` does).
    placement: Placement | None = None


@dataclass
class LayoutSpec:
    scheme: str = "blocks"
    polarity: str = "negative"
    left_placement: str = "left"
    right_placement: str = "top"
    result_placement: str = "front"
    gap: float = 4
    scatter: float = 0
    molecule: int = 1
    blast: float = 0

    @property
    def placement(self) -> Placement:
        return Placement(self.polarity, self.left_placement, self.right_placement,
                         self.result_placement)


@dataclass
class BlocksSpec:
    i: int = 1
    j: int = 1
    k: int = 1


@dataclass
class AnimSpec:
    alg: str = "none"
    fuse: str = "none"
    speed: float = 20          # mm's speed: steps per second at 60 fps (see sweep timing)
    hide_inputs: bool = False
    spin: float = 0            # camera turntable: seconds per turn (0: off; negative: clockwise)
    frames_per_step: int = 0   # 0: derive from speed
    seconds: float = 0         # > 0: fit the whole sweep into this many seconds


@dataclass
class VizSpec:
    sensitivity: str = "global"
    min_size: float = 0.2
    min_light: float = 0.4
    max_light: float = 0.7
    elem_scale: float = 1.25
    zero_hue: float = 0.77
    hue_gap: float = 0.74
    hue_spread: float = 0.04
    colormap: str = "mm"
    cell_shape: str = "sphere"   # round dots as mm draws them; a point cloud renders fast


@dataclass
class DecoSpec:
    legends: float = 6          # legend size (0: none); mm scales it by cbrt(h*w)
    shape_labels: bool = True   # I=, K=, J= labels
    row_guides: float = 0.6     # lightness of row guide lines (0: none)
    flow_guides: float = 0.5    # flow guide triangles (0: none)
    outlines: bool = True       # thin cube outlines
    # mm's magnifier lens: an Empty the user moves; cells within its radius show their values
    lens: bool = False
    lens_size: float = 0.5      # mm's lens size: the radius is LENS_CELLS_PER_SIZE x this, in cells
    magnification: float = 7    # mm's: the numbers' font is LENS_TEXT_PER_MAGNIFICATION x this
    lens_decimals: int = 2      # digits after the point of the numbers shown
    lens_row: int = -1          # the root result's cell the lens starts over (-1: the middle)
    lens_col: int = -1
    # mm's hover spotlight, set instead: result cell (spotlight_row, spotlight_col) of a matmul
    spotlight: float = 2        # mm's: how far the rest is dimmed (to 1 / (1 + spotlight))
    spotlight_row: int = -1     # -1: no spotlight
    spotlight_col: int = -1
    spotlight_matmul: str = ""  # "" : the root
    interior_spotlight: bool = False   # mm's: the k products of the cell inside the cube too
    axes: bool = False          # mm's i, j, k axis arrows with their letters
    title: bool = False         # the expression at the top of the view, as mm shows it


@dataclass
class LookSpec:
    background: str = "dark"
    view: str = "mm"
    # direction from the scene's centre to the camera for the "mm" view, in Blender axes
    # (X right, Y into the screen, Z up); empty: mm's default (-1, -1, 1). Presets made from
    # the article keep its viewpoint here.
    camera: list = field(default_factory=list)


@dataclass
class ModelSpec:
    """Real model data (attention presets): the leaves come from a capture."""
    model: str = ""        # gpt2 | smollm2 | minilm | a path
    layer: int = 0
    head: int = 0
    tokens: int = 256
    text: str = ""         # a text file (empty: the bundled text)
    capture: str = ""      # a capture .npz written by `python -m mm_blender capture`
    rope_theta: float = 10000.0   # for the rope / rope_t epilogues


@dataclass
class Spec:
    name: str
    expr: str
    tree: exprmod.MatMul
    description: str = ""
    group: str = "other"
    seed: int = 0
    leaves: dict[str, LeafSpec] = field(default_factory=dict)
    matmuls: dict[str, MatmulSpec] = field(default_factory=dict)
    layout: LayoutSpec = field(default_factory=LayoutSpec)
    blocks: BlocksSpec = field(default_factory=BlocksSpec)
    anim: AnimSpec = field(default_factory=AnimSpec)
    viz: VizSpec = field(default_factory=VizSpec)
    deco: DecoSpec = field(default_factory=DecoSpec)
    look: LookSpec = field(default_factory=LookSpec)
    model: ModelSpec | None = None
    base_dir: Path | None = None    # where relative file paths are resolved
    origin: str = ""                # file the spec came from (for messages)

    def leaf(self, node: exprmod.Leaf) -> LeafSpec:
        return self.leaves[node.name]

    def matmul(self, node: exprmod.MatMul) -> MatmulSpec:
        return self.matmuls[node.name]

    def shape(self, node: exprmod.Node) -> tuple[int, int]:
        """(rows, cols) of a node: a leaf's own shape, a matmul's (left rows, right cols)."""
        if isinstance(node, exprmod.Leaf):
            leaf = self.leaves[node.name]
            return leaf.h, leaf.w
        return self.shape(node.left)[0], self.shape(node.right)[1]

    def cell_count(self) -> int:
        """Cells drawn: every leaf occurrence and every result (not the interior products)."""
        total = 0
        for node in exprmod.walk(self.tree):
            h, w = self.shape(node)
            total += h * w
        return total


# --- building and validating -------------------------------------------------------------

_SECTIONS = {
    "layout": LayoutSpec, "blocks": BlocksSpec, "anim": AnimSpec, "viz": VizSpec,
    "deco": DecoSpec, "look": LookSpec, "model": ModelSpec,
}
_TOP_KEYS = {"name", "description", "group", "expr", "seed", "matrix", "matmul", *_SECTIONS}
_MATMUL_KEYS = {"epilogue", "alg", "k_blocks", "polarity", "left_placement",
                "right_placement", "result_placement"}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check one TOML value against a dataclass field type (int, float, bool, str)."""
    if typ in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise MMError(f"{where}: expected a whole number, got {value!r}")
        return value
    if typ in ("float", float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MMError(f"{where}: expected a number, got {value!r}")
        return _finite(value, where)
    if typ in ("bool", bool):
        if not isinstance(value, bool):
            raise MMError(f"{where}: expected true or false, got {value!r}")
        return value
    if typ in ("str", str):
        if not isinstance(value, str):
            raise MMError(f"{where}: expected a string, got {value!r}")
        return value
    if typ in ("list", list):   # a direction: three numbers
        if (not isinstance(value, list) or len(value) not in (0, 3)
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)):
            raise MMError(f"{where}: expected three numbers like [-1, -1, 1], got {value!r}")
        return [_finite(v, where) for v in value]
    raise AssertionError(typ)


def _finite(value, where: str) -> float:
    """A setting as a float; inf and nan (TOML has both) are refused, not drawn black."""
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise MMError(f"{where}: {value!r} is not a finite number")
    return x


def _fill(cls, table: Any, where: str, skip: tuple[str, ...] = ()):
    if not isinstance(table, dict):
        raise MMError(f"{where}: expected a table, got {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    for key in table:
        if key not in fields:
            raise MMError(f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(fields))}")
    kwargs = {k: _coerce(v, fields[k].type, f"{where}.{k}") for k, v in table.items()}
    return kwargs


def _range(value, lo, hi, where):
    if not (lo <= value <= hi) or (isinstance(value, float) and math.isnan(value)):
        raise MMError(f"{where}: {value!r} is out of range ({lo} to {hi})")


def from_dict(data: dict, *, name: str = "", origin: str = "<dict>",
              base_dir: Path | None = None) -> Spec:
    """Validate a preset table (as read from TOML) into a Spec. Errors name key and origin."""
    if not isinstance(data, dict):
        raise MMError(f"{origin}: expected a table at the top level")
    for key in data:
        if key not in _TOP_KEYS:
            raise MMError(f"{origin}: unknown key {key!r}; known keys: {', '.join(sorted(_TOP_KEYS))}")
    if "expr" not in data:
        raise MMError(f"{origin}: missing key 'expr' (the expression, e.g. expr = \"A @ B\")")
    text = _coerce(data["expr"], str, f"{origin}: expr")
    try:
        tree = exprmod.parse(text)
    except MMError as e:
        raise MMError(f"{origin}: {e}") from None

    spec = Spec(
        name=_coerce(data.get("name", name or "untitled"), str, f"{origin}: name"),
        expr=text, tree=tree, origin=origin, base_dir=base_dir,
        description=_coerce(data.get("description", ""), str, f"{origin}: description"),
        group=_check_choice(_coerce(data.get("group", "other"), str, f"{origin}: group"),
                            GROUPS, f"{origin}: group"),
        seed=_coerce(data.get("seed", 0), int, f"{origin}: seed"),
    )
    for section, cls in _SECTIONS.items():
        if section in data:
            kwargs = _fill(cls, data[section], f"{origin}: [{section}]")
            setattr(spec, section, cls(**kwargs))
    if "model" not in data:
        spec.model = None

    leaf_names = {leaf.name for leaf in exprmod.leaves(tree)}
    matmul_names = {mm.name for mm in exprmod.matmuls(tree)}
    matrices = data.get("matrix", {})
    if not isinstance(matrices, dict):
        raise MMError(f"{origin}: [matrix] must be a table of tables, one per leaf")
    for leaf_name, table in matrices.items():
        if leaf_name not in leaf_names:
            raise MMError(f"{origin}: [matrix.{leaf_name}]: {leaf_name!r} is not a leaf of the "
                          f"expression; leaves are {', '.join(sorted(leaf_names))}")
        kwargs = _fill(LeafSpec, table, f"{origin}: [matrix.{leaf_name}]", skip=("name",))
        spec.leaves[leaf_name] = LeafSpec(name=leaf_name, **kwargs)
    for leaf_name in leaf_names:
        spec.leaves.setdefault(leaf_name, LeafSpec(name=leaf_name))

    mm_tables = data.get("matmul", {})
    if not isinstance(mm_tables, dict):
        raise MMError(f"{origin}: [matmul] must be a table of tables, one per matmul")
    for mm_name, table in mm_tables.items():
        where = f"{origin}: [matmul.{mm_name!r}]" if " " in mm_name else f"{origin}: [matmul.{mm_name}]"
        if mm_name not in matmul_names:
            raise MMError(f"{where}: {mm_name!r} is not a matmul of the expression; matmuls are "
                          f"{', '.join(repr(n) for n in sorted(matmul_names))}")
        if not isinstance(table, dict):
            raise MMError(f"{where}: expected a table")
        for key in table:
            if key not in _MATMUL_KEYS:
                raise MMError(f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(_MATMUL_KEYS))}")
        mspec = MatmulSpec(name=mm_name)
        if "epilogue" in table:
            mspec.epilogue = _coerce(table["epilogue"], str, f"{where}.epilogue")
        if "alg" in table:
            mspec.alg = _coerce(table["alg"], str, f"{where}.alg")
        if "k_blocks" in table:
            mspec.k_blocks = _coerce(table["k_blocks"], int, f"{where}.k_blocks")
        place_keys = {"polarity", "left_placement", "right_placement", "result_placement"} & set(table)
        if place_keys:
            mspec.placement = Placement(**{k: _coerce(table[k], str, f"{where}.{k}") for k in place_keys})
        spec.matmuls[mm_name] = mspec
    for mm_name in matmul_names:
        spec.matmuls.setdefault(mm_name, MatmulSpec(name=mm_name))
    # The root's own k blocks come from [blocks].
    validate(spec)
    return spec


def validate(spec: Spec) -> None:
    """Check choices, ranges and shapes. Raises MMError naming the problem."""
    o = spec.origin
    L = spec.layout
    _check_choice(L.scheme, SCHEMES, f"{o}: layout.scheme")
    _check_choice(L.polarity, POLARITIES, f"{o}: layout.polarity")
    _check_choice(L.left_placement, LEFT_PLACEMENTS, f"{o}: layout.left_placement")
    _check_choice(L.right_placement, RIGHT_PLACEMENTS, f"{o}: layout.right_placement")
    _check_choice(L.result_placement, RESULT_PLACEMENTS, f"{o}: layout.result_placement")
    _range(L.gap, 0, 64, f"{o}: layout.gap")
    _range(L.scatter, 0, 1024, f"{o}: layout.scatter")
    _range(L.molecule, 1, 1000, f"{o}: layout.molecule")
    _range(L.blast, -2, 2, f"{o}: layout.blast")
    for axis in "ijk":
        _range(getattr(spec.blocks, axis), 1, 64, f"{o}: blocks.{axis}")
    A = spec.anim
    _check_choice(A.alg, tuple(a for a in ALGORITHMS if a != "inherit"), f"{o}: anim.alg")
    _check_choice(A.fuse, FUSIONS, f"{o}: anim.fuse")
    _range(A.speed, 0.01, 1000, f"{o}: anim.speed")
    _range(A.frames_per_step, 0, 10000, f"{o}: anim.frames_per_step")
    _range(A.seconds, 0, 36000, f"{o}: anim.seconds")
    _range(A.spin, -3600, 3600, f"{o}: anim.spin")
    root = spec.matmuls.get(spec.tree.name)
    if root is not None and (root.alg != "inherit" or root.k_blocks != 1):
        raise MMError(f"{o}: [matmul.{root.name!r}] is the root: set its algorithm with "
                      f"[anim] alg and its k blocks with [blocks] k")
    V = spec.viz
    _check_choice(V.sensitivity, SENSITIVITIES, f"{o}: viz.sensitivity")
    _check_choice(V.colormap, COLORMAPS, f"{o}: viz.colormap")
    _check_choice(V.cell_shape, CELL_SHAPES, f"{o}: viz.cell_shape")
    for key in ("min_size", "min_light", "max_light", "zero_hue", "hue_gap", "hue_spread"):
        _range(getattr(V, key), -1 if key.startswith("hue") else 0, 1, f"{o}: viz.{key}")
    _range(V.elem_scale, 0.01, 10, f"{o}: viz.elem_scale")
    if spec.model is not None:
        m = spec.model
        _range(m.layer, 0, 10_000, f"{o}: model.layer")
        _range(m.head, 0, 10_000, f"{o}: model.head")
        _range(m.tokens, 2, 1_000_000, f"{o}: model.tokens")
        _range(m.rope_theta, 1, 1e12, f"{o}: model.rope_theta")
    validate_deco(spec)
    _check_choice(spec.look.background, LOOKS, f"{o}: look.background")
    _check_choice(spec.look.view, VIEWS, f"{o}: look.view")
    if spec.look.camera and not any(spec.look.camera):
        raise MMError(f"{o}: look.camera: [0, 0, 0] is not a direction")
    for leaf in spec.leaves.values():
        where = f"{o}: [matrix.{leaf.name}]"
        _check_choice(leaf.init, leaf_inits(), f"{where}.init")
        _range(leaf.h, 1, MAX_SIDE, f"{where}.h")
        _range(leaf.w, 1, MAX_SIDE, f"{where}.w")
        _range(leaf.dropout, 0, 1, f"{where}.dropout")
        if leaf.init == "expr" and not leaf.formula:
            raise MMError(f"{where}: init 'expr' needs a formula, e.g. formula = \"i * w + j\"")
        if leaf.init == "expr":   # parsed here, so `check` refuses what `build` would
            from . import formula as formula_lang
            try:
                formula_lang.parse(leaf.formula)
            except MMError as e:
                raise MMError(f"{where}.formula: {e}") from None
        if leaf.init == "file" and not leaf.file:
            raise MMError(f"{where}: init 'file' needs file = \"path.csv|.npy|.npz|.safetensors\"")
        if leaf.init == "url" and not leaf.url:
            raise MMError(f"{where}: init 'url' needs url = \"https://...\"")
        if leaf.init == "transpose":
            src = spec.leaves.get(leaf.source)
            if src is None:
                raise MMError(f"{where}: init 'transpose' needs source = the name of another leaf; "
                              f"{leaf.source!r} is not one")
            if src.init == "transpose":
                raise MMError(f"{where}: source {leaf.source!r} is itself a transpose")
            if (leaf.h, leaf.w) != (src.w, src.h):
                raise MMError(f"{where}: as the transpose of {src.name!r} ({src.h}x{src.w}) it "
                              f"must be {src.w}x{src.h}, not {leaf.h}x{leaf.w}")
    for mspec in spec.matmuls.values():
        where = f"{o}: [matmul.{mspec.name!r}]"
        _check_choice(mspec.epilogue, EPILOGUES, f"{where}.epilogue")
        _check_choice(mspec.alg, ALGORITHMS, f"{where}.alg")
        _range(mspec.k_blocks, 1, 64, f"{where}.k_blocks")
        if mspec.placement is not None:
            if L.scheme != "custom":
                raise MMError(f"{where}: placement keys need layout.scheme = \"custom\" "
                              f"(the {L.scheme!r} scheme derives them)")
            p = mspec.placement
            _check_choice(p.polarity, POLARITIES, f"{where}.polarity")
            _check_choice(p.left_placement, LEFT_PLACEMENTS, f"{where}.left_placement")
            _check_choice(p.right_placement, RIGHT_PLACEMENTS, f"{where}.right_placement")
            _check_choice(p.result_placement, RESULT_PLACEMENTS, f"{where}.result_placement")
    check_shapes(spec)


LENS_CELLS_PER_SIZE = 6.0            # mm's default lens size 0.5: a radius of 3 cells
# mm's lens is a loupe: under magnification 7 the numbers' font is 0.84 cells and they sit
# 3.15 cells apart (spread about the lens centre), so they are enlarged and keep apart
LENS_TEXT_PER_MAGNIFICATION = 0.12
LENS_SPREAD_PER_MAGNIFICATION = 0.45


def validate_deco(spec: Spec) -> None:
    """The lens and spotlight settings: ranges, and cells that exist."""
    o, D = spec.origin, spec.deco
    _range(D.lens_size, 0.01, 100, f"{o}: deco.lens_size")
    _range(D.magnification, 0.1, 100, f"{o}: deco.magnification")
    _range(D.lens_decimals, 0, 6, f"{o}: deco.lens_decimals")
    _range(D.spotlight, 0, 100, f"{o}: deco.spotlight")
    rows, cols = spec.shape(spec.tree)
    for key, n in (("lens_row", rows), ("lens_col", cols)):
        _range(getattr(D, key), -1, n - 1, f"{o}: deco.{key} (the root result is {rows}x{cols})")
    if D.spotlight_matmul and D.spotlight_matmul not in {m.name for m in exprmod.matmuls(spec.tree)}:
        raise MMError(f"{o}: deco.spotlight_matmul: {D.spotlight_matmul!r} is not a matmul of the "
                      f"expression; matmuls are "
                      f"{', '.join(repr(m.name) for m in exprmod.matmuls(spec.tree))}")
    if (D.spotlight_row < 0) != (D.spotlight_col < 0):
        raise MMError(f"{o}: deco.spotlight_row and deco.spotlight_col go together "
                      f"(both -1: no spotlight), got {D.spotlight_row} and {D.spotlight_col}")
    node = next((m for m in exprmod.matmuls(spec.tree)
                 if m.name == (D.spotlight_matmul or spec.tree.name)), spec.tree)
    rows, cols = spec.shape(node)
    for key, n in (("spotlight_row", rows), ("spotlight_col", cols)):
        _range(getattr(D, key), -1, n - 1, f"{o}: deco.{key} ({node.name!r} is {rows}x{cols})")


def leaf_inits() -> tuple[str, ...]:
    """Every accepted leaf init: mm's initialisers, files and urls, plus ours (transpose of
    another leaf, model data from the [model] table)."""
    from .initialisers import INITIALISERS  # local: keeps spec importable on its own
    return INITIALISERS + ("transpose", "model")


def check_shapes(spec: Spec) -> None:
    """Every matmul's left width must equal its right height (mm silently fixes k; we refuse)."""
    for node in exprmod.matmuls(spec.tree):
        lh, lw = spec.shape(node.left)
        rh, rw = spec.shape(node.right)
        if lw != rh:
            raise MMError(
                f"{spec.origin}: shape mismatch in {node.name!r}: left {node.left.name!r} is "
                f"{lh}x{lw} but right {node.right.name!r} is {rh}x{rw} "
                f"(left width {lw} != right height {rh})")


def check_memory(spec: Spec, memory: int | None = None):
    """See core/budget.py: counts every cell and sweep point before any work."""
    from .budget import check_memory as check
    return check(spec, memory)


def root_spec(spec: Spec) -> MatmulSpec:
    return spec.matmuls[spec.tree.name]


def load_toml(path: str | Path) -> Spec:
    path = Path(path)
    data = read_toml(path)
    return from_dict(data, name=path.stem, origin=str(path), base_dir=path.parent)


def read_toml(path: Path) -> dict:
    """A preset file's table; MMError for a file that cannot be read, is not UTF-8 TOML, or
    nests too deeply for the parser."""
    if not path.is_file() and path.exists():   # a FIFO would never end
        from ..outputs import describe
        raise MMError(f"preset file '{path}' is {describe(path)}, not a preset file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MMError(f"preset file '{path}' does not exist") from None
    except OSError as e:
        raise MMError(f"preset file '{path}' cannot be read: {e.strerror}") from None
    from .file_headers import MAX_TOML_DEPTH, toml_depth
    if toml_depth(raw) > MAX_TOML_DEPTH:   # tomllib recurses on each level
        raise MMError(f"preset file '{path}' nests arrays or tables more than "
                      f"{MAX_TOML_DEPTH} levels deep (the depth limit)")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MMError(f"preset file '{path}' is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise MMError(f"preset file '{path}' is not valid TOML: {e}") from None
    return data


def with_changes(spec: Spec, **changes) -> Spec:
    """A copy of a spec with some top-level fields replaced (then re-validated)."""
    new = dataclasses.replace(spec, **changes)
    validate(new)
    return new
