"""Writing a traced tree as an ordinary preset: a TOML file and, beside it, an .npz of its
leaves' values (read back by the `file` initialiser). Both are written via temporary files
and moved into place only when complete."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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
    """The preset's path (a .toml whose folder exists and is writable), before any work."""
    path = Path(path)
    if path.suffix.lower() != ".toml":
        raise MMError(f"--out names the preset: give a path ending in .toml, not '{path}'")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise MMError(f"output folder '{parent}' does not exist")
    if not os.access(parent, os.W_OK):
        raise MMError(f"output folder '{parent}' is not writable")
    for p in (path, data_path(path)):
        if p.is_dir():
            raise MMError(f"output '{p}' is a folder, not a file")
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
    tmp_npz = npz.with_name(npz.name + ".part")
    tmp_toml = path.with_name(path.name + ".part")
    try:
        with open(tmp_npz, "wb") as f:
            np.savez(f, **{n: np.asarray(v, np.float32) for n, v in leaves.items()})
        tmp_toml.write_text(text, encoding="utf-8")
        with np.load(tmp_npz, allow_pickle=False) as check:   # verify before replacing
            if sorted(check.files) != sorted(leaves):
                raise MMError(f"writing {npz} failed: the arrays did not read back")
        os.replace(tmp_npz, npz)
        os.replace(tmp_toml, path)
    except OSError as e:
        raise MMError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        for tmp in (tmp_npz, tmp_toml):
            if tmp.exists():
                tmp.unlink()
    return specmod.load_toml(path)
