"""Trace benchmark: the cost of recording a function's matmuls, against the same function
run plainly in the same process (the floor: tracing can only add to it), for the examples in
tests/data/trace_examples.py. torch runs single-threaded (2 shared cores here).

    python bench/bench_trace.py [--out BENCHMARKS.md] [--repeat 3]

Prints the results as JSON; with --out, appends a markdown section to that file.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tests" / "data" / "trace_examples.py"
NAMES = ("mlp", "causal_head", "multihead_attention", "encoder_layer", "smollm2_head")


def _best(fn, repeat):
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(repeat: int = 3) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch
    from mm_blender.tracing import Trace, load_function
    torch.set_num_threads(1)
    rows = {}
    for name in NAMES:
        fn = load_function(f"{EXAMPLES}:{name}")
        fn()                                   # warm: imports, weights, caches
        plain = _best(fn, repeat)
        traced = _best(lambda: Trace.run(fn), repeat)
        t = Trace.run(fn)
        rows[name] = dict(plain_ms=round(plain * 1e3, 2), traced_ms=round(traced * 1e3, 2),
                          ratio=round(traced / plain, 1), trees=len(t.trees),
                          drawn_matmuls=t.trees[0].matmuls, drawn_cells=t.trees[0].cells)
    return rows


def markdown(rows: dict) -> str:
    lines = ["## Trace", "",
             "Recording a function's matmuls (`Trace.run`) against the function run plainly, "
             "best of 3, torch on one thread.", "",
             "| function | plain | traced | ratio | trees | drawn tree |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['plain_ms']} ms | {r['traced_ms']} ms | {r['ratio']}x | "
                     f"{r['trees']} | {r['drawn_matmuls']} matmuls, {r['drawn_cells']:,} cells |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    rows = run(args.repeat)
    print(json.dumps(rows, indent=2))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n" + markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
