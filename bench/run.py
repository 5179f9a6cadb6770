"""`make bench`: every benchmark in one run, written to BENCHMARKS.md. Each section measures
ours against a baseline in the same run and quotes the ratio; timings are wall-clock on this
machine (2 cores, no GPU) and move with its load, which is recorded at the top."""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_core  # noqa: E402
import bench_render  # noqa: E402
import bench_lens  # noqa: E402
import bench_scene  # noqa: E402
import bench_sweep_models  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--readme", help="also update the Speed figures in this README")
    ap.add_argument("--quick", action="store_true",
                    help="skip 4M scaling, the 640x360 renders and the cube baseline")
    args = ap.parse_args(argv)
    started = time.time()
    sections = []
    print("core ...", file=sys.stderr, flush=True)
    sections.append(bench_core.markdown(bench_core.run()))
    print("scene ...", file=sys.stderr, flush=True)
    sections.append(bench_scene.markdown(bench_scene.run(quick=args.quick, render=not args.quick)))
    print("lens ...", file=sys.stderr, flush=True)
    sections.append(bench_lens.markdown(bench_lens.run()))
    print("sweep and models ...", file=sys.stderr, flush=True)
    sections.append(bench_sweep_models.markdown(bench_sweep_models.run()))
    print("render ...", file=sys.stderr, flush=True)
    render = bench_render.run(quick=args.quick,
                              progress=lambda m: print(m, file=sys.stderr, flush=True))
    sections.append(bench_render.markdown(render))
    load = os.getloadavg()
    header = (
        "# Benchmarks\n\n"
        f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"bpy 5.0.1, no GPU. Load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}; the whole run took {time.time() - started:.0f} s. Timings move with "
        "the machine's load; each section's ratio is measured within one run.\n\n"
    )
    Path(args.out).write_text(header + "\n".join(sections), encoding="utf-8")
    if args.readme:
        bench_render.write_readme(args.readme, render)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
