"""Render many presets in one process and write the README gallery from the results."""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import MMError

GALLERY_START = "<!-- gallery:start -->"
GALLERY_END = "<!-- gallery:end -->"


@dataclass
class Rendered:
    name: str
    description: str
    image: Path | None
    cells: int = 0
    seconds: float = 0.0
    error: str = ""


def render_presets(out_dir: Path, *, static_only: bool = False, only=None,
                   resolution: str = "480x270", samples: int = 24, look=None) -> list[Rendered]:
    from .. import api, bpy_env
    from ..cli import _resolution
    from ..core.presets import list_presets

    presets = list_presets()
    if only is not None:   # a misspelt name is an error, not a preset silently skipped
        known = {p.name for p in presets}
        unknown = [name for name in only if name not in known]
        if unknown:
            raise MMError(f"unknown preset{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))}; run 'python -m mm_blender "
                          "presets' to list them")
    bpy_env.prepare()
    res = _resolution(resolution)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    infos = [p for p in presets if only is None or p.name in only]
    for n, info in enumerate(infos):
        start = time.perf_counter()
        try:
            spec = api.load_spec(info.path)
            if static_only and spec.anim.alg != "none":
                continue
            print(f"[{n + 1}/{len(infos)}] {info.name}: {spec.cell_count():,} cells",
                  file=sys.stderr, flush=True)
            api.reset_file()
            api.build(spec, look=look)
            import bpy   # a preset whose inner matmuls animate is shown complete
            bpy.context.scene.frame_set(bpy.context.scene.frame_end)
            image = api.render_still(out_dir / f"{info.name}.png", resolution=res,
                                     samples=samples)
            results.append(Rendered(info.name, info.description, image, spec.cell_count(),
                                    time.perf_counter() - start))
        except MMError as e:
            print(f"  {info.name}: {e}", file=sys.stderr)
            results.append(Rendered(info.name, info.description, None, error=str(e)))
    return results


def _link(image: Path, readme: Path) -> str:
    # relative to the README's folder, so the links work wherever the README is read
    try:
        return Path(os.path.relpath(image.resolve(), readme.resolve().parent)).as_posix()
    except ValueError:   # Windows: another drive has no relative path
        return image.resolve().as_posix()


def write_gallery(readme: Path, results: list[Rendered], image_dir: Path, columns: int = 3) -> None:
    """Replace the README's gallery section (between the gallery markers) with a table."""
    text = readme.read_text(encoding="utf-8")
    if GALLERY_START not in text or GALLERY_END not in text:
        raise MMError(f"{readme} has no gallery markers ({GALLERY_START} ... {GALLERY_END})")
    ok = [r for r in results if r.image is not None]
    rows = []
    for start in range(0, len(ok), columns):
        chunk = ok[start:start + columns]
        rows.append("| " + " | ".join(
            f"![{r.name}]({_link(image_dir / r.image.name, readme)})" for r in chunk) + " |")
        rows.append("| " + " | ".join(f"**{r.name}** — {r.description}" for r in chunk) + " |")
    header = "| " + " | ".join([" "] * columns) + " |\n|" + "---|" * columns
    body = header + "\n" + "\n".join(rows) if rows else "(no pictures yet)"
    new = re.sub(re.escape(GALLERY_START) + ".*?" + re.escape(GALLERY_END),
                 lambda m: f"{GALLERY_START}\n{body}\n{GALLERY_END}", text, flags=re.S)
    readme.write_text(new, encoding="utf-8")
