"""What a spec will build, counted before any work: every cell, and for sweeps the products in
flight, the operand highlights and the k-block planes; the memory check that refuses a scene
this machine cannot hold. Needs no values (pure geometry from the layout)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from types import SimpleNamespace

from ..errors import MMError
from .spec import Spec

BYTES_PER_CELL = 250   # measured: a built cell costs ~150 B in Blender plus ~60 B of numpy plan


@dataclass(frozen=True)
class Budget:
    cells: int        # matrices' cells (what `check` reports)
    sweep: int        # sweep points: products in flight, highlights, k-block planes

    @property
    def points(self) -> int:
        return self.cells + self.sweep


def sweep_points(spec: Spec) -> int:
    """Points the sweeps add: per animated matmul its largest slice of products, its operands'
    value copies (the products sample them) and highlights (unless inputs are hidden), and
    rows x cols per k block of its k-block planes."""
    if spec.anim.alg == "none" and all(m.alg in ("none", "inherit")
                                       for m in spec.matmuls.values()):
        return 0
    from .layout import block_info, compute_layout
    from .sweep import ANIMATED, matmul_sweep
    total = 0
    for c in compute_layout(spec).cubes:
        if c.alg not in ANIMATED:
            continue
        bi, bj, bk = c.blocks
        cube = SimpleNamespace(
            key=c.path, name=c.node.name, path=c.path, left="", right="", epilogue="none",
            alg=c.alg, rows=c.rows, cols=c.cols, depth=c.depth,
            block_i=block_info(c.rows, bi)[0], block_j=block_info(c.cols, bj)[0],
            block_k=block_info(c.depth, bk)[0])
        sw = matmul_sweep(cube)
        operands = sw.rows * sw.depth + sw.depth * sw.cols
        total += sw.product_count() + operands
        if not spec.anim.hide_inputs:
            total += operands
        if sw.k_planes:
            total += sw.k.blocks * sw.rows * sw.cols
    return total


def budget(spec: Spec) -> Budget:
    return Budget(spec.cell_count(), sweep_points(spec))


def available_memory() -> int | None:
    """Physical memory in bytes (None where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(spec: Spec, memory: int | None = None) -> Budget:
    """Refuse, before any work, a scene whose cells and sweep points would not fit in this
    machine's memory."""
    memory = available_memory() if memory is None else memory
    b = budget(spec)
    need = b.points * BYTES_PER_CELL
    if memory and need > 0.8 * memory:
        what = f"{b.cells:,} cells"
        if b.sweep:
            what += f" and its sweep {b.sweep:,} more points (products, highlights, k planes)"
        raise MMError(
            f"{spec.origin}: the scene has {what}, which needs about "
            f"{need / 2**30:.1f} GiB to build, more than this machine's "
            f"{memory / 2**30:.1f} GiB of memory allows; make the matrices smaller")
    return b
