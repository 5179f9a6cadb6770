"""Render every preset (or the static ones) into a folder, with a summary line:
`python render_jobs/render_all.py --out DIR [--static] [--resolution WxH] [--samples N]
[--cell-shape cube|sphere] [--no-titles] [--compact]`
(or `blender -b -P render_jobs/render_all.py -- ...`). `--gallery README.md` rewrites the
README's gallery section with the rendered pictures."""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402

mm = _bootstrap.import_mm_blender()
from importlib import import_module  # noqa: E402

gallery = import_module(mm.__name__ + ".render.gallery")
MMError = import_module(mm.__name__ + ".errors").MMError


def main(argv):
    p = argparse.ArgumentParser(prog="render_all.py")
    p.add_argument("--out", required=True)
    p.add_argument("--static", action="store_true", help="only presets without animation")
    p.add_argument("--only", nargs="*", default=None, help="preset names to render")
    p.add_argument("--resolution", default="1280x800", help="default: mm's screenshot size")
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--look", default=None)
    p.add_argument("--cell-shape", default=None, choices=["cube", "sphere"],
                   help="draw every preset's cells as this shape")
    p.add_argument("--no-titles", action="store_true",
                   help="no expression title on compound expressions")
    p.add_argument("--compact", action="store_true",
                   help="256-colour PNGs (a few hundred KB at 1280x800)")
    p.add_argument("--gallery", default=None, help="README to update with a gallery section")
    p.add_argument("--keep-going", action="store_true",
                   help="exit 0 even when some presets fail (e.g. GPT-2 weights not here)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    results = gallery.render_presets(Path(args.out), static_only=args.static, only=args.only,
                                     resolution=args.resolution, samples=args.samples,
                                     look=args.look, cell_shape=args.cell_shape,
                                     titles=not args.no_titles, compact=args.compact)
    failed = [r for r in results if r.error]
    if args.gallery:
        gallery.write_gallery(Path(args.gallery), results, Path(args.out))
    print(f"rendered {len(results) - len(failed)} of {len(results)} presets into {args.out} "
          f"in {time.perf_counter() - start:.0f} s" + (f"; failed: {', '.join(r.name for r in failed)}" if failed else ""))
    return 2 if failed and not args.keep_going else 0


try:
    sys.exit(main(_bootstrap.job_args()))
except MMError as e:   # a user error (unknown preset, bad resolution, ...): one line, exit 2
    print(f"render_all.py: error: {e}", file=sys.stderr)
    sys.exit(2)
