"""Writing a traced tree as an ordinary preset: a TOML file and, beside it, an .npz of its
leaves' values (read back by the `file` initialiser). Both are written via temporary files
and moved into place only when complete."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import outputs
from ..core import spec as specmod
from ..core import toml_write
from ..errors import MMError
from . import trees


def preset_table(tree: trees.Tree, name: str, description: str, data_file: str) -> tuple:
    """(the preset as a TOML table, the leaves' arrays by name)."""
    root, leaves, epilogues = trees.to_expr(tree.root, tree.name)
    table = {
        "name": name,
        "description": description,
        "group": "other",
        "expr": _text(root),
        "matrix": {n: {"h": int(v.shape[0]), "w": int(v.shape[1]), "init": "file",
                       "file": data_file, "tensor": n} for n, v in leaves.items()},
    }
    mm = {n: {"epilogue": e} for n, e in epilogues.items() if e != "none"}
    if mm:
        table["matmul"] = mm
    return table, leaves


def _text(root) -> str:
    from ..core import expr as exprmod
    return exprmod.to_text(root)


def data_path(toml_path: Path) -> Path:
    return toml_path.with_suffix(".npz")


def check_output(path: str | os.PathLike) -> Path:
    """The preset's path and its data file beside it, checked before any work."""
    path = outputs.check_output(path, "preset", "--out")
    outputs.check_output(data_path(path), "capture", "--out's data file")
    return path


def write(tree: trees.Tree, path: str | os.PathLike, name: str = "",
          description: str = "") -> specmod.Spec:
    """Write the preset and its data; returns the Spec loaded back from the written file."""
    path = check_output(path)
    name = name or path.stem
    npz = data_path(path)
    table, leaves = preset_table(tree, name, description, npz.name)
    text = toml_write.dumps(table)
    # check before anything lands on disk: the same validation a preset gets when loaded
    specmod.from_dict(table, name=name, origin=str(path), base_dir=path.parent)
    with outputs.atomic(npz, what="traced data") as tmp:   # verified before it replaces
        with open(tmp, "wb") as f:
            np.savez(f, **{n: np.asarray(v, np.float32) for n, v in leaves.items()})
        with np.load(tmp, allow_pickle=False) as check:
            if sorted(check.files) != sorted(leaves):
                raise MMError(f"the arrays of {npz} did not read back")
    with outputs.atomic(path, what="preset") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return specmod.load_toml(path)
