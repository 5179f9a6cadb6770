"""`python -m mm_blender ...`: parse arguments, call the API, print results.

User errors (MMError, bad arguments), failed writes and interrupts print one line on stderr
and exit 2. The network is off unless --allow-network is given.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from .errors import MMError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise MMError(f"{self.prog}: {message}")


def _resolution(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not m:
        raise MMError(f"invalid resolution {text!r}: write it as WIDTHxHEIGHT, e.g. 640x360")
    w, h = int(m.group(1)), int(m.group(2))
    if not (4 <= w <= 16384 and 4 <= h <= 16384):
        raise MMError(f"invalid resolution {text!r}: each side must be between 4 and 16384")
    return w, h


def _frames(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", text.strip())
    if not m:
        raise MMError(f"invalid frame range {text!r}: write it as A-B, e.g. 1-48, or a single frame")
    a = int(m.group(1))
    b = int(m.group(2)) if m.group(2) else a
    if b < a:
        raise MMError(f"invalid frame range {text!r}: the end comes before the start")
    return a, b


class Progress:
    """Progress lines on stderr, at most a few per second."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.last = 0.0
        self.last_fraction = -1.0
        self.start = time.perf_counter()

    def __call__(self, fraction: float, message: str) -> None:
        now = time.perf_counter()
        # quick steps are thinned out, but every percent of a long render is shown
        if self.quiet or (now - self.last < 0.25 and fraction < 1.0
                          and fraction - self.last_fraction < 0.01):
            return
        self.last, self.last_fraction = now, fraction
        print(f"[{100 * fraction:5.1f}%] {message}", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _tree_lines(spec) -> list[str]:
    from .core import expr as E
    lines = []

    def describe(node):
        h, w = spec.shape(node)
        if isinstance(node, E.Leaf):
            leaf = spec.leaf(node)
            init = leaf.init + (f" {leaf.formula!r}" if leaf.init == "expr" else "")
            init += f" of {leaf.source}" if leaf.init == "transpose" else ""
            return f"{node.name}  {h}x{w}  leaf, {init}"
        m = spec.matmul(node)
        extra = [f"epilogue {m.epilogue}"] if m.epilogue != "none" else []
        if m.alg not in ("inherit", "none"):
            extra.append(f"alg {m.alg}")
        if m.k_blocks > 1:
            extra.append(f"k blocks {m.k_blocks}")
        return f"{node.name}  {h}x{w}  matmul" + (f" ({', '.join(extra)})" if extra else "")

    def rec(node, prefix, last, root):
        branch = "" if root else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + describe(node))
        if isinstance(node, E.MatMul):
            child_prefix = prefix + ("" if root else ("   " if last else "│  "))
            rec(node.left, child_prefix, False, False)
            rec(node.right, child_prefix, True, False)

    rec(spec.tree, "", True, True)
    return lines


def cmd_presets(args) -> int:
    from .core.presets import list_presets
    infos = list_presets()
    width = max(len(p.name) for p in infos)
    group = None
    for p in infos:
        if p.group != group:
            group = p.group
            print(f"[{group}]")
        print(f"  {p.name.ljust(width)}  {p.description}")
    return 0


def cmd_check(args) -> int:
    from . import api
    spec = api.load_spec(args.source)
    built = api.preflight(spec, allow_network=args.allow_network)   # the same checks as build
    _print_check(spec, sweep_points=built.sweep)
    return 0


def _print_check(spec, sweep_points: int = 0) -> None:
    print(f"{spec.name}: {spec.expr}")
    for line in _tree_lines(spec):
        print("  " + line)
    b = spec.blocks
    print(f"  cells: {spec.cell_count():,}  blocks: i {b.i}, j {b.j}, k {b.k}  "
          f"layout: {spec.layout.scheme}, gap {spec.layout.gap:g}")
    if sweep_points:
        print(f"  sweep points: {sweep_points:,} (products in flight, highlights, k planes)")


def _prepare_bpy():
    from . import bpy_env
    bpy_env.prepare()


def cmd_build(args) -> int:
    from . import api
    out = api.check_output(args.blend, "blend", "--blend")
    spec = api.load_spec(args.source)
    api.preflight(spec, allow_network=args.allow_network)
    progress = Progress(args.quiet)
    _prepare_bpy()
    api.reset_file()
    api.build(spec, look=args.look, view=args.view, progress=progress,
              allow_network=args.allow_network)
    api.save_blend(out)
    print(f"built {spec.name}: {spec.cell_count():,} cells -> {out} "
          f"({progress.elapsed():.1f} s)")
    return 0


def _render_outputs(args, frames):
    """Check --out (and --blend) before any work: the image, video or frame folder."""
    from . import outputs
    if frames and not args.video:   # a PNG sequence (or a chunk of one) into a folder
        out = outputs.check_output_folder(args.out, "--out (--frames writes a PNG sequence "
                                                    "into a folder)")
    elif args.video:
        out = outputs.check_output(args.out, "video", "--video --out")
    else:
        out = outputs.check_output(args.out, "image", "--out")
    blend = outputs.check_output(args.blend, "blend", "--blend") if args.blend else None
    if blend is not None and blend == out:
        raise MMError(f"--out and --blend are the same file '{out}'")
    return out, blend


def cmd_render(args) -> int:
    from . import api
    resolution = _resolution(args.resolution)
    frames = _frames(args.frames) if args.frames else None
    if args.samples < 1 or args.samples > 65536:
        raise MMError(f"invalid --samples {args.samples}: use 1 to 65536")
    if args.video and (resolution[0] % 2 or resolution[1] % 2):   # before the build, not after
        raise MMError(f"invalid resolution {args.resolution!r}: H.264 video needs an even "
                      "width and height")
    if args.video and Path(args.out).suffix.lower() != ".mp4":
        raise MMError(f"--video writes H.264 MP4: give an output ending in .mp4, "
                      f"not '{Path(args.out).name}'")
    out, blend = _render_outputs(args, frames)
    spec = api.load_spec(args.source)
    api.preflight(spec, allow_network=args.allow_network)
    progress = Progress(args.quiet)
    _prepare_bpy()
    api.reset_file()
    api.build(spec, look=args.look, view=args.view, progress=progress,
              allow_network=args.allow_network)
    if args.video or frames:
        timed = []
        written = api.render_animation(out, frames=frames, video=args.video,
                                       resolution=resolution, samples=args.samples,
                                       engine=args.engine, device=args.device,
                                       progress=progress, on_frame=timed.append)
        from .render.frame_clock import summary
        print(summary(timed))
    else:
        written = api.render_still(out, resolution=resolution, samples=args.samples,
                                   engine=args.engine, device=args.device, progress=progress)
    if blend is not None:   # after the render: a failed render leaves the old .blend too
        api.save_blend(blend)
    print(f"rendered {spec.name}: {spec.cell_count():,} cells, {resolution[0]}x{resolution[1]}, "
          f"{args.samples} samples -> {written} ({progress.elapsed():.1f} s)")
    return 0


def cmd_import_mm(args) -> int:
    from . import outputs
    from .interop.mm_links import import_mm
    out = outputs.check_output(args.output, "preset", "--output") if args.output else None
    data, dropped = import_mm(args.source, out_path=out, name=args.name,
                              allow_network=args.allow_network)
    for note in dropped:
        print(f"note: {note}", file=sys.stderr)
    print(f"imported {data.get('name', '')}: {data['expr']}" + (f" -> {out}" if out else ""))
    return 0


def cmd_capture(args) -> int:
    from . import api
    from .models.capture import write_capture
    out = api.check_output(args.out, "capture", "--out")
    progress = Progress(args.quiet)
    cap = write_capture(args.model, args.layer, args.head, args.text, args.tokens, out, progress)
    print(f"captured {args.model} layer {args.layer} head {args.head}: "
          f"{len(cap.tokens)} tokens -> {out} ({progress.elapsed():.1f} s)")
    return 0


def cmd_trace(args) -> int:
    from .tracing import trace_file, tree_listing
    spec, traced = trace_file(args.target, args.out, root=args.root, batch=args.batch,
                              head=args.head)
    out = Path(args.out).absolute()
    print(f"traced {args.target} -> {out} (data: {out.with_suffix('.npz')})")
    _print_check(spec)
    for line in tree_listing(traced, spec.tree.name):
        print(line)
    for note in traced.skipped[:10]:
        print(f"note: {note}", file=sys.stderr)
    return 0


def make_parser() -> argparse.ArgumentParser:
    # `mm-blender` is the console script a pip install adds; `python -m mm_blender` works anywhere
    prog = "mm-blender" if Path(sys.argv[0]).name == "mm-blender" else "python -m mm_blender"
    p = _Parser(prog=prog,
                description="Matrix multiplications as native Blender scenes.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("presets", help="list the built-in presets")
    s.set_defaults(func=cmd_presets)

    def network_option(s):
        s.add_argument("--allow-network", action="store_true",
                       help="let url leaves and ?config= links download (off by default)")

    s = sub.add_parser("check", help="validate a preset and print its expression tree")
    s.add_argument("source", help="preset name or path to a .toml file")
    network_option(s)
    s.set_defaults(func=cmd_check)

    def scene_options(s):
        s.add_argument("source", help="preset name or path to a .toml file")
        network_option(s)
        s.add_argument("--look", choices=["dark", "paper"], default=None)
        s.add_argument("--view", choices=["mm", "front", "top", "iso"], default=None)
        s.add_argument("--quiet", action="store_true", help="no progress lines")

    s = sub.add_parser("build", help="build a preset and save the .blend")
    scene_options(s)
    s.add_argument("--blend", required=True, help="output .blend file")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("render", help="build a preset and render it with Cycles")
    scene_options(s)
    s.add_argument("--out", required=True,
                   help="output .png; .mp4 with --video; a folder with --frames")
    s.add_argument("--resolution", default="640x360")
    s.add_argument("--samples", type=int, default=16)
    s.add_argument("--engine", choices=["cycles", "eevee"], default="cycles")
    s.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    s.add_argument("--video", action="store_true", help="render the animation to an H.264 MP4")
    s.add_argument("--frames", default=None, help="frame range A-B: a PNG sequence (or a chunk)")
    s.add_argument("--blend", default=None, help="also save the built .blend here")
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("import-mm", help="import an mm link, config JSON or file as a preset")
    s.add_argument("source", help="an mm URL (?params=...), a JSON file, or JSON text")
    s.add_argument("-o", "--output", default=None, help="write the preset TOML here")
    s.add_argument("--name", default=None)
    network_option(s)
    s.set_defaults(func=cmd_import_mm)

    s = sub.add_parser("capture", help="capture a real attention head to an .npz")
    s.add_argument("--model", required=True, help="gpt2 | smollm2 | minilm | PATH")
    s.add_argument("--layer", type=int, required=True)
    s.add_argument("--head", type=int, required=True)
    s.add_argument("--text", default=None, help="text file (default: the bundled text)")
    s.add_argument("--tokens", type=int, default=256)
    s.add_argument("--out", required=True)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_capture)

    s = sub.add_parser("trace", help="run a PyTorch function and save its matmuls as a preset "
                       "(the only command that runs code: the file you name)")
    s.add_argument("target", help="FILE.py:FUNCTION, called with no arguments")
    s.add_argument("--out", required=True, help="the preset .toml (its data goes beside it)")
    s.add_argument("--root", default=None, help="draw the tree with this root (default: the "
                   "largest)")
    s.add_argument("--batch", type=int, default=0, help="batch index of batched matmuls")
    s.add_argument("--head", type=int, default=0, help="head index of multi-head matmuls")
    s.set_defaults(func=cmd_trace)
    return p


def main(argv: list[str] | None = None) -> int:
    if argv is None:   # the command line of a process of ours (not a call from a script)
        from . import outputs
        outputs.guard_process()
    try:
        args = make_parser().parse_args(argv)
        return args.func(args)
    except MMError as e:
        print(f"mm_blender: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:   # called from a script (our own process: outputs.guard_process)
        print("mm_blender: error: interrupted; unfinished outputs were removed",
              file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:   # output piped into `head` and the like
        sys.stderr.close()
        return 0
