"""Pictures for the README beyond the static gallery: one frame part-way through each sweep
preset, a short MP4 of one, and the looks (paper, diverging colours). `make gallery` runs it
after the static gallery."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mm_blender import api, bpy_env  # noqa: E402
from mm_blender.cli import _resolution  # noqa: E402
from mm_blender.render.gallery import compact_png, gallery_spec, prepare_frame  # noqa: E402

# preset, fraction of the sweep to show
FRAMES = [("dot_product", 0.33), ("vmprod", 0.5), ("identity_mirror", 0.66), ("mvprod_random", 0.5),
          ("outer_product_random", 0.5), ("binary_sweep", 0.4), ("data_parallel_vmprod", 0.4),
          ("attention_smollm2_l5h4_vmprod", 0.45)]
VIDEO = "vmprod"
VIDEO_RESOLUTION = (1280, 720)
VIDEO_FPS = 24
# (file, preset, look, colormap)
LOOKS = [("binary_paper", "binary", "paper", "mm"),
         ("binary_paper_diverging", "binary", "paper", "diverging")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/sweeps")
    ap.add_argument("--resolution", default="1280x800", help="default: mm's screenshot size")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--video-samples", type=int, default=6,
                    help="denoised: enough for crisp labels at 1280x720")
    ap.add_argument("--video-seconds", type=float, default=3.0,
                    help="length of the README video (its frames span the whole sweep)")
    ap.add_argument("--cell-shape", default="sphere", choices=["cube", "sphere"])
    ap.add_argument("--only", nargs="*", default=None,
                    help="pictures to make (preset or look names; vmprod.mp4 for the video)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = _resolution(args.resolution)
    bpy_env.prepare()
    import bpy
    def wanted(name):
        return args.only is None or name in args.only

    for name, fraction in FRAMES:
        if not wanted(name):
            continue
        t = time.perf_counter()
        api.reset_file()
        try:
            coll = api.build(gallery_spec(api.load_spec(name), args.cell_shape))
        except Exception as e:   # a preset this checkout lacks: say so, go on
            print(f"{name}: {e}", file=sys.stderr)
            continue
        scene = bpy.context.scene
        frame = round(scene.frame_start + fraction * (scene.frame_end - scene.frame_start))
        scene.frame_set(frame)
        for warning in prepare_frame(scene, coll, res):
            print(f"  {warning}", file=sys.stderr)
        folder = api.render_animation(out / f".{name}", frames=(frame, frame), resolution=res,
                                      samples=args.samples)
        png = next(Path(folder).glob("*.png"))
        png.replace(out / f"{name}.png")
        compact_png(out / f"{name}.png")
        Path(folder).rmdir()
        print(f"{name}: frame {frame} of {scene.frame_start}-{scene.frame_end} "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    import dataclasses
    for file, name, look, colormap in LOOKS:
        if not wanted(file):
            continue
        spec = gallery_spec(api.load_spec(name), args.cell_shape)
        spec.viz = dataclasses.replace(spec.viz, colormap=colormap)
        api.reset_file()
        coll = api.build(spec, look=look)
        for warning in prepare_frame(bpy.context.scene, coll, res):
            print(f"  {warning}", file=sys.stderr)
        compact_png(api.render_still(out / f"{file}.png", resolution=res, samples=args.samples))
        print(f"{file}: {name}, {look} look, {colormap} colours", file=sys.stderr)
    if wanted(VIDEO + ".mp4"):
        t = time.perf_counter()
        api.reset_file()
        coll = api.build(gallery_spec(api.load_spec(VIDEO), args.cell_shape))
        scene = bpy.context.scene
        first, last = scene.frame_start, scene.frame_end
        # the whole sweep in a few seconds at 24 fps: every n-th frame of it
        count = max(2, round(args.video_seconds * VIDEO_FPS))
        scene.frame_step = max(1, math.ceil((last - first + 1) / count))
        for warning in prepare_frame(scene, coll, VIDEO_RESOLUTION):
            print(f"  {warning}", file=sys.stderr)
        api.render_animation(out / f"{VIDEO}.mp4", video=True, resolution=VIDEO_RESOLUTION,
                             fps=VIDEO_FPS, samples=args.video_samples)
        print(f"{VIDEO}.mp4: frames {first}-{last} step {scene.frame_step} at {VIDEO_FPS} fps "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
