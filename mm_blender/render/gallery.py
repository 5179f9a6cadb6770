"""Render many presets in one process and write the README gallery from the results."""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def prepare_frame(scene, collection, resolution) -> list[str]:
    """Frame the camera for `resolution` and size the cells for their footprint there (see
    scene/readability.fit_cells); returns its warnings, printed by the caller."""
    from ..scene import camera as cameramod
    from ..scene import readability
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    cameramod.refit(scene.camera, scene)
    return readability.fit_cells(scene, collection, resolution)


def gallery_spec(spec, cell_shape: str | None = None, titles: bool = True):
    """The spec as the gallery draws it: its expression as a title when it is compound (as
    mm shows it), and optionally another cell shape."""
    import dataclasses
    from ..core.scene_plan import is_compound
    if cell_shape:
        spec.viz = dataclasses.replace(spec.viz, cell_shape=cell_shape)
    if titles and is_compound(spec):
        spec.deco = dataclasses.replace(spec.deco, title=True)
    return spec


def render_presets(out_dir: Path, *, static_only: bool = False, only=None,
                   resolution: str = "480x270", samples: int = 24, look=None,
                   cell_shape: str | None = None, titles: bool = True,
                   compact: bool = False) -> list[Rendered]:
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
            coll = api.build(gallery_spec(spec, cell_shape, titles), look=look)
            import bpy   # a preset whose inner matmuls animate is shown complete
            bpy.context.scene.frame_set(bpy.context.scene.frame_end)
            for warning in prepare_frame(bpy.context.scene, coll, res):
                print(f"  {warning}", file=sys.stderr)
            image = api.render_still(out_dir / f"{info.name}.png", resolution=res,
                                     samples=samples)
            if compact:
                compact_png(image)
            results.append(Rendered(info.name, info.description, image, spec.cell_count(),
                                    time.perf_counter() - start))
        except MMError as e:
            print(f"  {info.name}: {e}", file=sys.stderr)
            results.append(Rendered(info.name, info.description, None, error=str(e)))
    return results


def _palette(pixels: np.ndarray, colours: int = 256, rounds: int = 8) -> np.ndarray:
    """A palette for (N, 3) uint8 pixels: k-means on a sample, seeded by the most frequent
    colours of a coarse grid (so the background and the cells' hues get entries)."""
    rng = np.random.default_rng(0)
    sample = pixels[rng.choice(len(pixels), min(len(pixels), 40_000), replace=False)]
    sample = sample.astype(np.float32)
    coarse = (sample // 16).astype(np.int32)
    keys, counts = np.unique(coarse[:, 0] * 256 + coarse[:, 1] * 16 + coarse[:, 2],
                             return_counts=True)
    seeds = keys[np.argsort(-counts)][:colours]
    centres = np.stack([seeds // 256, (seeds // 16) % 16, seeds % 16], axis=1) * 16.0 + 8
    for _ in range(rounds):
        nearest = _nearest(sample, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, nearest, sample)
        n = np.bincount(nearest, minlength=len(centres))[:, None]
        centres = np.where(n > 0, sums / np.maximum(n, 1), centres)
    return np.clip(np.round(centres), 0, 255).astype(np.uint8)


def _nearest(pixels: np.ndarray, palette: np.ndarray, chunk: int = 65536) -> np.ndarray:
    pal = palette.astype(np.float32)
    out = np.empty(len(pixels), dtype=np.int32)
    for a in range(0, len(pixels), chunk):
        p = pixels[a:a + chunk].astype(np.float32)
        d = (p * p).sum(1)[:, None] - 2 * p @ pal.T + (pal * pal).sum(1)[None]
        out[a:a + chunk] = d.argmin(axis=1)
    return out


def compact_png(path: Path) -> Path:
    """Rewrite a rendered PNG as a 256-colour palette PNG (as mm's reference screenshots
    are): a few hundred KB at 1280x800 instead of a megabyte. Reads it with Blender."""
    import struct
    import zlib

    import bpy
    img = bpy.data.images.load(str(path))
    try:
        w, h = img.size
        px = np.empty(w * h * 4, dtype=np.float32)
        img.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(img)
    rgb = np.clip(np.round(px.reshape(h, w, 4)[::-1, :, :3] * 255), 0, 255).astype(np.uint8)
    flat = rgb.reshape(-1, 3)
    palette = _palette(flat)
    index = _nearest(flat, palette).astype(np.uint8).reshape(h, w)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), index], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
           + chunk(b"PLTE", palette.tobytes()) + chunk(b"IDAT", zlib.compress(raw, 9))
           + chunk(b"IEND", b""))
    tmp = path.with_name(f".{path.name}.compact")
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return path


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
