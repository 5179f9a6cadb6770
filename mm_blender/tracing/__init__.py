"""Tracing PyTorch code into an mm scene: run a function with torch, record the matmuls it
performs, and write the largest tree (or a chosen one) as an ordinary preset.

    spec = mm_blender.trace(fn, x)                       # a Spec, ready to build
    t = Trace.run(fn, (x,), batch=0, head=0)             # every tree, then pick and save
    t.save("attn.toml", root="self_attn.head_out")

Seams: `record` (the torch function mode), `graph` (matrices, epilogues, rewrites),
`trees` (roots and names), `preset` (TOML + .npz). This is the only door that runs code: the
user's own file, by their command. Presets and links never run code.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from ..errors import MMError
from . import mode, preset, trees


class Trace:
    """What one run of a function drew: its trees, largest first."""

    def __init__(self, recorder, result, label: str):
        self.recorder = recorder
        self.result = result
        self.label = label
        self.trees = trees.find(recorder.rec)
        self.skipped = recorder.rec.skipped

    @classmethod
    def run(cls, fn, args=(), kwargs=None, *, batch: int = 0, head: int = 0,
            label: str = "") -> "Trace":
        if not callable(fn):
            raise MMError(f"trace needs a function or module to call, not {type(fn).__name__}")
        recorder, result = mode.record(fn, args, kwargs, batch=batch, head=head)
        return cls(recorder, result, label or getattr(fn, "__qualname__", type(fn).__name__))

    def tree(self, root: str | None = None) -> trees.Tree:
        if not self.trees:
            why = f"; {'; '.join(self.skipped[:3])}" if self.skipped else ""
            raise MMError(f"{self.label}: no matmul was recorded (trace draws @, matmul, mm, "
                          "bmm, linear, addmm, baddbmm, two-operand einsum and "
                          f"scaled_dot_product_attention){why}")
        if root is None:
            return self.trees[0]
        for t in self.trees:
            if t.name == root:
                return t
        raise MMError(f"{self.label}: no tree has the root {root!r}; the trees are "
                      + ", ".join(repr(t.name) for t in self.trees))

    def description(self, tree: trees.Tree) -> str:
        return f"Traced from {self.label}: {tree.matmuls} matmul" + "s" * (tree.matmuls != 1)

    def save(self, path, root: str | None = None, name: str = ""):
        """Write the tree as PATH.toml with PATH.npz beside it; returns the loaded Spec."""
        preset.check_output(path)
        tree = self.tree(root)
        return preset.write(tree, path, name, self.description(tree))

    def spec(self, root: str | None = None):
        """The tree as a Spec whose data lives in a temporary folder (save() keeps it)."""
        tree = self.tree(root)
        folder = Path(tempfile.mkdtemp(prefix="mm_trace_"))
        name = _safe_stem(tree.name)
        return preset.write(tree, folder / f"{name}.toml", name, self.description(tree))


def _safe_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "trace"


def tree_listing(traced: Trace, chosen: str) -> list[str]:
    """Every tree found, largest first, the drawn one marked."""
    lines = [f"trees found: {len(traced.trees)} (pick one with --root NAME)"]
    for t in traced.trees:
        mark = "*" if t.name == chosen else " "
        what = f"{t.matmuls} matmul" + "s" * (t.matmuls != 1)
        note = ", the function's output" if t.is_output else ""
        lines.append(f" {mark} {t.name}  ({what}, {t.cells:,} cells{note})  {t.expr}")
    return lines


def trace(fn, *args, **kwargs):
    """Run fn(*args, **kwargs) with torch and return its largest matmul tree as a Spec."""
    return Trace.run(fn, args, kwargs).spec()


def load_function(target: str):
    """FILE.py:FUNC -> the function, by importing FILE.py (this runs the user's code)."""
    if ":" not in target:
        raise MMError(f"trace target {target!r}: write it as FILE.py:FUNCTION")
    file, _, func = target.rpartition(":")
    path = Path(file)
    if path.suffix != ".py":
        raise MMError(f"trace target {target!r}: {file!r} is not a .py file")
    if not path.is_file():
        raise MMError(f"trace target {target!r}: file '{path}' does not exist")
    if not func.isidentifier():
        raise MMError(f"trace target {target!r}: {func!r} is not a function name")
    mode.require_torch()
    module_name = f"mm_trace_{_safe_stem(path.stem)}"
    spec = importlib.util.spec_from_file_location(module_name, path.resolve())
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)   # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except MMError:
        raise
    except Exception as e:
        raise MMError(f"{path} failed while being imported: {type(e).__name__}: {e}") from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    fn = getattr(module, func, None)
    if fn is None or not callable(fn):
        found = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                 and getattr(v, "__module__", "") == module_name]
        raise MMError(f"{path} has no function {func!r}"
                      + (f"; it defines {', '.join(found)}" if found else ""))
    return fn


def trace_file(target: str, out, *, root: str | None = None, batch: int = 0,
               head: int = 0):
    """The CLI's and the panel's door: import FILE.py, call FUNC(), save the chosen tree.
    Returns (the saved Spec, the Trace)."""
    preset.check_output(out)     # before running anything
    fn = load_function(target)
    try:
        t = Trace.run(fn, batch=batch, head=head, label=target)
    except MMError:
        raise
    except Exception as e:
        raise MMError(f"{target} raised {type(e).__name__}: {e}") from None
    return t.save(out, root=root), t
