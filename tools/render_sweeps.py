"""Pictures for the README beyond the static gallery: one frame part-way through each sweep
preset, a short MP4 of one, and the looks (paper, diverging colours). `make gallery` runs it
after the static gallery."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mm_blender import api, bpy_env  # noqa: E402
from mm_blender.cli import _resolution  # noqa: E402

# preset, fraction of the sweep to show
FRAMES = [("dot_product", 0.33), ("vmprod", 0.5), ("mvprod_random", 0.5),
          ("outer_product_random", 0.5), ("binary_sweep", 0.4), ("data_parallel_vmprod", 0.4),
          ("attention_smollm2_l5h4_vmprod", 0.45)]
VIDEO = "vmprod"
# (file, preset, look, colormap)
LOOKS = [("binary_paper", "binary", "paper", "mm"),
         ("binary_paper_diverging", "binary", "paper", "diverging")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/sweeps")
    ap.add_argument("--resolution", default="640x400")
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = _resolution(args.resolution)
    bpy_env.prepare()
    import bpy
    for name, fraction in FRAMES:
        t = time.perf_counter()
        api.reset_file()
        try:
            api.build(name)
        except Exception as e:   # a preset this checkout lacks: say so, go on
            print(f"{name}: {e}", file=sys.stderr)
            continue
        scene = bpy.context.scene
        frame = round(scene.frame_start + fraction * (scene.frame_end - scene.frame_start))
        folder = api.render_animation(out / f".{name}", frames=(frame, frame), resolution=res,
                                      samples=args.samples)
        png = next(Path(folder).glob("*.png"))
        png.replace(out / f"{name}.png")
        Path(folder).rmdir()
        print(f"{name}: frame {frame} of {scene.frame_start}-{scene.frame_end} "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    import dataclasses
    for file, name, look, colormap in LOOKS:
        spec = api.load_spec(name)
        spec.viz = dataclasses.replace(spec.viz, colormap=colormap)
        api.reset_file()
        api.build(spec, look=look)
        api.render_still(out / f"{file}.png", resolution=res, samples=args.samples)
        print(f"{file}: {name}, {look} look, {colormap} colours", file=sys.stderr)
    api.reset_file()
    api.build(VIDEO)
    api.render_animation(out / f"{VIDEO}.mp4", video=True, resolution=(400, 250), samples=4)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
