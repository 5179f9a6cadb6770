"""Colour and size of every cell: mm's HSL rule (or a perceptual diverging map), vectorised.

Zero is not drawn (size 0); NaN is white; inf is drawn at full size in its sign's colour.
Colours come out as linear RGBA (what Blender's colour attributes hold).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import VizSpec

NAN_RGB = (1.0, 1.0, 1.0)

# ColorBrewer RdBu (11 classes), from red (most negative) to blue (most positive), as sRGB.
_RDBU = np.array([
    (103, 0, 31), (178, 24, 43), (214, 96, 77), (244, 165, 130), (253, 219, 199),
    (247, 247, 247), (209, 229, 240), (146, 197, 222), (67, 147, 195), (33, 102, 172),
    (5, 48, 97)], dtype=float) / 255.0


@dataclass(frozen=True)
class Range:
    absmin: float
    absmax: float

    @property
    def absdiff(self) -> float:
        return self.absmax - self.absmin


def finite_absmax(x: np.ndarray) -> float:
    a = np.abs(x[np.isfinite(x)])
    return float(a.max()) if a.size else 0.0


def finite_absmin(x: np.ndarray) -> float:
    a = np.abs(x[np.isfinite(x)])
    return float(a.min()) if a.size else 0.0


def value_range(x: np.ndarray, sensitivity: str, global_absmax: float) -> Range:
    """What a matrix's values are scaled against (mm's four sensitivities)."""
    local = finite_absmax(x)
    if sensitivity == "local":
        return Range(0.0, local)
    if sensitivity == "global":
        return Range(0.0, global_absmax)
    if sensitivity == "semilocal":
        return Range(0.0, float(np.sqrt(local * global_absmax)))
    if sensitivity == "superlocal":
        return Range(finite_absmin(x), local)
    raise ValueError(sensitivity)


def cell_edge(viz: VizSpec) -> float:
    """Largest cell edge in scene units (cell pitch is 1). mm's elem scale sizes screen
    sprites; 0.6 per unit of elem scale, at most 0.7, leaves the gaps that make cells read
    as cells (and keeps big faces of mixed signs from averaging to grey)."""
    return float(min(0.7, 0.6 * viz.elem_scale))


def sizes(x: np.ndarray, rng: Range, viz: VizSpec) -> np.ndarray:
    """mm: minsize*E + (E - minsize*E) * sqrt(v), v = (|x| - absmin) / range; zero not drawn."""
    E = cell_edge(viz)
    zsize = viz.min_size * E
    with np.errstate(all="ignore"):
        ax = np.abs(x.astype(np.float64))
        if rng.absdiff > 0:
            v = np.clip((ax - rng.absmin) / rng.absdiff, 0.0, 1.0)
        else:
            v = np.zeros_like(ax)
        out = zsize + (E - zsize) * np.sqrt(v)
    out = np.where(np.isnan(x) | np.isinf(x), E, out)
    out = np.where(x == 0, 0.0, out)
    return np.minimum(out, E).astype(np.float32)


def _hsl_to_rgb(h, s, l):
    """Vectorised HSL -> RGB (all in 0..1), the same formula three.js uses."""
    h = np.mod(h, 1.0)
    q = np.where(l <= 0.5, l * (1 + s), l + s - l * s)
    p = 2 * l - q

    def hue2rgb(t):
        t = np.mod(t, 1.0)
        return np.where(t < 1 / 6, p + (q - p) * 6 * t,
               np.where(t < 1 / 2, q,
               np.where(t < 2 / 3, p + (q - p) * 6 * (2 / 3 - t), p)))

    return np.stack([hue2rgb(h + 1 / 3), hue2rgb(h), hue2rgb(h - 1 / 3)], axis=-1)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def mm_colors_srgb(x: np.ndarray, rng: Range, viz: VizSpec) -> np.ndarray:
    """mm's colour rule, (N, 3) sRGB."""
    x = x.astype(np.float64)
    with np.errstate(all="ignore"):
        sign = np.sign(x)
        diff = rng.absdiff
        ax = np.clip(np.abs(x), rng.absmin, rng.absmax) if rng.absmax >= rng.absmin else np.abs(x)
        signed_clipped = sign * ax
        hue_vol = (signed_clipped - sign * rng.absmin) / diff if diff > 0 else np.zeros_like(x)
        hue = np.mod(viz.zero_hue + viz.hue_gap * sign + hue_vol * viz.hue_spread, 1.0)
        min_light = max(viz.min_light, 1e-5)
        max_light = max(viz.max_light, min_light)
        light_vol = np.sqrt(np.maximum(ax - rng.absmin, 0.0)) / np.sqrt(diff) if diff > 0 else np.zeros_like(x)
        light = min_light + (max_light - min_light) * light_vol
        rgb = _hsl_to_rgb(hue, 1.0, light)
    return rgb


def diverging_colors_srgb(x: np.ndarray, rng: Range) -> np.ndarray:
    """A perceptual blue-red diverging map (ColorBrewer RdBu): negative red, positive blue,
    lightness falling with magnitude. Reads well in print and for colour-blind viewers."""
    x = x.astype(np.float64)
    with np.errstate(all="ignore"):
        ax = np.clip(np.abs(x), rng.absmin, rng.absmax) if rng.absmax >= rng.absmin else np.abs(x)
        v = (ax - rng.absmin) / rng.absdiff if rng.absdiff > 0 else np.zeros_like(x)
        # light (near zero) to dark (largest); never the white centre, so cells stay visible,
        # nor the darkest ends, so the two signs stay apart at a glance
        t = 0.5 + np.sign(x) * (0.12 + 0.30 * np.sqrt(np.clip(v, 0, 1)))
    pos = np.clip(np.nan_to_num(t, nan=0.5), 0, 1) * (len(_RDBU) - 1)   # NaN: set white later
    lo = np.floor(pos).astype(int).clip(0, len(_RDBU) - 2)
    f = (pos - lo)[..., None]
    return _RDBU[lo] * (1 - f) + _RDBU[lo + 1] * f


LUT_SIZE = 8193   # colour lookup resolution over the signed, normalised value


def _exact_srgb(x: np.ndarray, rng: Range, viz: VizSpec) -> np.ndarray:
    if viz.colormap == "diverging":
        return diverging_colors_srgb(x, rng)
    return mm_colors_srgb(x, rng, viz)


def colors(x: np.ndarray, rng: Range, viz: VizSpec) -> np.ndarray:
    """(N, 4) float32 linear RGBA for values x (flattened).

    Colour depends only on the sign and the normalised magnitude v in [0, 1], so it is read
    from a lookup table of LUT_SIZE entries over sign*sqrt(v) (exact rule at the table's
    points; steps of 1/4096 in sqrt(v), below what 8-bit output can show)."""
    x = np.asarray(x).ravel()
    out = np.ones((x.size, 4), dtype=np.float32)
    if rng.absdiff <= 0 or x.size < LUT_SIZE:
        rgb = _exact_srgb(x, rng, viz)
        rgb = np.where(np.isnan(x)[:, None], np.array(NAN_RGB), np.nan_to_num(rgb))
        out[:, :3] = srgb_to_linear(rgb)
        return out
    # indexed by sign * sqrt(v): lightness and size grow with sqrt(v), so the table is
    # evenly spaced in what the eye sees, also near zero
    t = np.linspace(-1.0, 1.0, LUT_SIZE)
    grid = np.sign(t) * (rng.absmin + t * t * rng.absdiff)
    lut = srgb_to_linear(np.nan_to_num(_exact_srgb(grid, rng, viz))).astype(np.float32)
    with np.errstate(all="ignore"):
        xf = x.astype(np.float32)
        v = np.clip((np.abs(xf) - np.float32(rng.absmin)) / np.float32(rng.absdiff), 0, 1)
        root = np.sqrt(v)
        signed = np.where(xf < 0, -root, root)
        idx = np.rint((signed + 1) * np.float32((LUT_SIZE - 1) / 2))
        idx = np.nan_to_num(idx, nan=(LUT_SIZE - 1) / 2).astype(np.int32)
        # the centre entry is zero's colour: a nonzero value takes its sign's nearest entry
        centre = (LUT_SIZE - 1) // 2
        idx = np.where(x > 0, np.maximum(idx, centre + 1),
                       np.where(x < 0, np.minimum(idx, centre - 1), idx))
    out[:, :3] = lut[idx]
    nan = np.isnan(x)
    if nan.any():
        out[nan, :3] = srgb_to_linear(np.array(NAN_RGB))
    return out
