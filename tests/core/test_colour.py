"""Colour and size of cells: mm's HSL rule on hand-computed values, sizes, the four
sensitivities, the diverging map, and the sRGB -> linear conversion."""

import math

import numpy as np
import pytest

from mm_blender.core import colour
from mm_blender.core.colour import Range, cell_edge, colors, sizes, value_range
from mm_blender.core.spec import VizSpec

VIZ = VizSpec()           # mm's defaults: zero hue .77, gap .74, spread .04, light .4-.7
E = cell_edge(VIZ)


def lin(c):
    """sRGB -> linear, the IEC 61966-2-1 formula (written here, not imported)."""
    c = float(c)
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def rgb_of(x, rng, viz=VIZ):
    return colors(np.array([x], dtype=np.float64), rng, viz)[0]


def assert_linear(got, srgb):
    assert got.shape == (4,) and got[3] == 1.0
    np.testing.assert_allclose(got[:3], [lin(c) for c in srgb], atol=2e-6)


# --------------------------------------------------------------------------------------------
# mm's HSL rule, by hand
#
# HSL -> RGB with s = 1: q = l + 1 - l (l >= .5) or 2l (l < .5), p = 2l - q, and each channel
# is hue2rgb(h + 1/3), hue2rgb(h), hue2rgb(h - 1/3).


def test_positive_absmax_is_hue_sum_at_max_light():
    # hue = (.77 + .74 + .04) % 1 = .55, light = max light .7 -> q = 1, p = .4
    # r: t = .8833 -> p = .4;  g: t = .55 -> p + (q-p)*6*(2/3 - .55) = .82;  b: t = .2167 -> 1
    assert_linear(rgb_of(3.0, Range(0.0, 3.0)), (0.4, 0.82, 1.0))


def test_negative_absmax_is_red():
    # hue = (.77 - .74 - .04) % 1 = .99, light .7: r: t = .3233 -> 1; g: t = .99 -> .4;
    # b: t = .6567 -> .4 + .6*6*(2/3 - .6567) = .436
    assert_linear(rgb_of(-3.0, Range(0.0, 3.0)), (1.0, 0.4, 0.436))


def test_quarter_value():
    # x = .25 of 1: hue = .77 + .74 + .25*.04 = 1.52 -> .52; light = .4 + .3*sqrt(.25) = .55
    # q = 1, p = .1; r: t = .8533 -> .1; g: .1 + .9*6*(2/3 - .52) = .892; b: t = .1867 -> 1
    assert_linear(rgb_of(0.25, Range(0.0, 1.0)), (0.1, 0.892, 1.0))


def test_small_negative_value_low_light():
    # x = -.04 of 1: hue = .77 - .74 - .04*.04 = .0284; light = .4 + .3*.2 = .46 (< .5)
    # q = 2*.46 = .92, p = 0; r: t = .3617 -> .92; g: t = .0284 -> 6*.0284*.92 = .156768;
    # b: t = .6951 -> 0
    assert_linear(rgb_of(-0.04, Range(0.0, 1.0)), (0.92, 0.156768, 0.0))


def test_hue_follows_the_settings():
    viz = VizSpec(zero_hue=0.0, hue_gap=0.5, hue_spread=0.0, min_light=0.5, max_light=0.5)
    # positive: hue .5 (cyan), light .5 -> (0, 1, 1); negative: hue -.5 -> .5 as well
    assert_linear(rgb_of(1.0, Range(0, 1), viz), (0.0, 1.0, 1.0))
    viz = VizSpec(zero_hue=0.0, hue_gap=1 / 3, hue_spread=0.0, min_light=0.5, max_light=0.5)
    assert_linear(rgb_of(1.0, Range(0, 1), viz), (0.0, 1.0, 0.0))     # green
    assert_linear(rgb_of(-1.0, Range(0, 1), viz), (0.0, 0.0, 1.0))    # 2/3: blue


def test_positive_blue_negative_red_everywhere():
    x = np.linspace(-5, 5, 101)
    x = x[x != 0]
    c = colors(x, Range(0.0, 5.0), VIZ)
    pos, neg = c[x > 0], c[x < 0]
    assert (pos[:, 2] > pos[:, 0]).all() and (neg[:, 0] > neg[:, 2]).all()


def test_lightness_follows_sqrt_of_magnitude():
    """HSL lightness ((max + min) / 2 of the sRGB channels) is min + (max - min) * sqrt(v)."""
    x = np.linspace(0.01, 2, 50)
    for sign in (1, -1):
        srgb = colour.mm_colors_srgb(sign * x, Range(0.0, 2.0), VIZ)
        light = (srgb.max(axis=1) + srgb.min(axis=1)) / 2
        np.testing.assert_allclose(light, 0.4 + 0.3 * np.sqrt(x / 2), atol=1e-12)


def test_nan_is_white_and_inf_is_the_extreme_colour():
    rng = Range(0.0, 2.0)
    x = np.array([np.nan, np.inf, -np.inf, 2.0, -2.0])
    c = colors(x, rng, VIZ)
    np.testing.assert_allclose(c[0], [1, 1, 1, 1])
    np.testing.assert_allclose(c[1], c[3], atol=1e-7)
    np.testing.assert_allclose(c[2], c[4], atol=1e-7)
    assert np.isfinite(c).all()


def test_out_of_range_values_are_clipped_to_the_extreme():
    rng = Range(0.0, 1.0)
    np.testing.assert_allclose(rgb_of(7.0, rng), rgb_of(1.0, rng), atol=1e-7)
    np.testing.assert_allclose(rgb_of(-7.0, rng), rgb_of(-1.0, rng), atol=1e-7)


def test_zero_range_does_not_crash():
    c = colors(np.array([0.0, 0.0]), Range(0.0, 0.0), VIZ)
    assert np.isfinite(c).all()
    assert (sizes(np.zeros(3), Range(0.0, 0.0), VIZ) == 0).all()


@pytest.mark.parametrize("colormap", ["mm", "diverging"])
@pytest.mark.parametrize("absmin", [0.0, 0.5])
def test_large_arrays_agree_with_the_exact_rule(colormap, absmin):
    """Big matrices go through a lookup table; it must match the rule closely, and a tiny
    nonzero value keeps its sign's colour (not the colour of zero)."""
    viz = VizSpec(colormap=colormap)
    rng = Range(absmin, 3.0)
    x = np.random.default_rng(1).normal(0, 1.2, 20000)
    x = np.where(np.abs(x) < absmin, absmin, x)
    x[:6] = [0.0, np.nan, 3.0, -3.0, absmin + 1e-6, -absmin - 1e-6]
    big = colors(x, rng, viz)
    exact = np.concatenate([colors(chunk, rng, viz) for chunk in np.array_split(x, 10)])
    assert big.shape == (20000, 4) and big.dtype == np.float32
    np.testing.assert_allclose(big[1], [1, 1, 1, 1])
    # the table is spaced in sqrt(v), so it stays close to the rule near zero too
    np.testing.assert_allclose(big, exact, atol=2e-3)
    assert big[4, 2] > big[4, 0] and big[5, 0] > big[5, 2]           # blue / red, not purple


# --------------------------------------------------------------------------------------------
# Size


def test_size_formula():
    rng = Range(0.0, 4.0)
    x = np.array([0.0, 4.0, -4.0, 1.0, -2.25, 0.04, np.nan, np.inf, -np.inf, 9.0])
    s = sizes(x, rng, VIZ)
    z = VIZ.min_size * E
    want = [0.0, E, E, z + (E - z) * 0.5, z + (E - z) * 0.75, z + (E - z) * 0.1, E, E, E, E]
    np.testing.assert_allclose(s, want, rtol=1e-6)
    assert s.dtype == np.float32


def test_cell_edge_follows_elem_scale():
    assert cell_edge(VizSpec(elem_scale=1.0)) == pytest.approx(0.6)
    assert cell_edge(VizSpec(elem_scale=1.1)) == pytest.approx(0.66)
    assert cell_edge(VizSpec(elem_scale=3.0)) == pytest.approx(0.7)   # cells never touch


def test_size_with_superlocal_minimum():
    rng = Range(1.0, 5.0)
    s = sizes(np.array([1.0, 5.0, 2.0, -3.0]), rng, VIZ)
    z = VIZ.min_size * E
    np.testing.assert_allclose(s, [z, E, z + (E - z) * 0.5, z + (E - z) * math.sqrt(0.5)],
                               rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Sensitivities


MATRIX = np.array([[-2.0, 0.5], [1.0, 4.0], [np.nan, np.inf]])


def test_sensitivity_ranges_by_hand():
    gmax = 16.0
    assert value_range(MATRIX, "global", gmax) == Range(0.0, 16.0)
    assert value_range(MATRIX, "local", gmax) == Range(0.0, 4.0)
    assert value_range(MATRIX, "semilocal", gmax) == Range(0.0, 8.0)      # sqrt(4 * 16)
    assert value_range(MATRIX, "superlocal", gmax) == Range(0.5, 4.0)     # finite |x| only
    with pytest.raises(ValueError):
        value_range(MATRIX, "galactic", gmax)


def test_sensitivity_changes_colour_and_size():
    x = np.array([2.0])
    gmax = 16.0
    viz = VizSpec()
    z = viz.min_size * E
    for sens, (lo, hi) in {"global": (0, 16), "local": (0, 4), "semilocal": (0, 8),
                           "superlocal": (0.5, 4)}.items():
        rng = value_range(MATRIX, sens, gmax)
        v = (2.0 - lo) / (hi - lo)
        assert sizes(x, rng, viz)[0] == pytest.approx(z + (E - z) * math.sqrt(v), rel=1e-6)
        # lightness of the colour: min + (max - min) * sqrt(v), hue .77 + .74 + v*.04
        light = 0.4 + 0.3 * math.sqrt(v)
        hue = (0.77 + 0.74 + v * 0.04) % 1
        q = light + 1 - light if light >= 0.5 else 2 * light
        p = 2 * light - q

        def h2r(t):
            t %= 1
            if t < 1 / 6:
                return p + (q - p) * 6 * t
            if t < 1 / 2:
                return q
            if t < 2 / 3:
                return p + (q - p) * 6 * (2 / 3 - t)
            return p

        assert_linear(rgb_of(2.0, rng, viz), (h2r(hue + 1 / 3), h2r(hue), h2r(hue - 1 / 3)))


def test_absmax_helpers_ignore_non_finite():
    assert colour.finite_absmax(MATRIX) == 4.0
    assert colour.finite_absmin(MATRIX) == 0.5
    assert colour.finite_absmax(np.array([np.nan, np.inf])) == 0.0


# --------------------------------------------------------------------------------------------
# Diverging map


DIVERGING = VizSpec(colormap="diverging")


def test_diverging_signs_and_monotone_darkening():
    mags = np.linspace(0.05, 1.0, 40)
    for sign, (hi, lo) in ((1, (2, 0)), (-1, (0, 2))):
        c = colors(sign * mags, Range(0.0, 1.0), DIVERGING)[:, :3]
        assert (c[:, hi] > c[:, lo]).all()                  # positive bluish, negative reddish
        lum = c @ [0.2126, 0.7152, 0.0722]
        assert (np.diff(lum) < 0).all()                     # darker with magnitude
    # never the white centre, so small values stay visible
    small = colors(np.array([1e-9, -1e-9]), Range(0.0, 1.0), DIVERGING)[:, :3]
    assert (small.min(axis=1) < 0.9).all()


def test_diverging_ends_are_colorbrewer_rdbu():
    c = colors(np.array([1.0, -1.0]), Range(0.0, 1.0), DIVERGING)
    # the largest values sit at 0.92 of RdBu's 0..10 scale (0.08 for negatives): 20% of the
    # way from class 9 (33, 102, 172) to the darkest blue (5, 48, 97), and 20% from class 1
    # (178, 24, 43) to the darkest red (103, 0, 31)
    blue = 0.8 * np.array([33, 102, 172]) + 0.2 * np.array([5, 48, 97])
    red = 0.8 * np.array([178, 24, 43]) + 0.2 * np.array([103, 0, 31])
    assert_linear(c[0], tuple(blue / 255))
    assert_linear(c[1], tuple(red / 255))


def test_diverging_nan_white():
    c = colors(np.array([np.nan]), Range(0.0, 1.0), DIVERGING)
    np.testing.assert_allclose(c[0], [1, 1, 1, 1])


# --------------------------------------------------------------------------------------------
# Linear conversion


@pytest.mark.parametrize("c", [0.0, 0.02, 0.04045, 0.05, 0.2, 0.5, 0.82, 1.0])
def test_srgb_to_linear(c):
    assert float(colour.srgb_to_linear(np.array(c))) == pytest.approx(lin(c), abs=1e-12)


def test_srgb_to_linear_known_values_and_clipping():
    got = colour.srgb_to_linear(np.array([0.5, 1.0, -0.2, 1.3]))
    np.testing.assert_allclose(got, [0.21404114, 1.0, 0.0, 1.0], atol=1e-7)


def test_colors_are_linear_rgba_of_the_srgb_rule():
    x = np.linspace(-3, 3, 61)
    rng = Range(0.0, 3.0)
    c = colors(x, rng, VIZ)
    assert c.shape == (61, 4) and c.dtype == np.float32
    np.testing.assert_allclose(c[:, 3], 1.0)
    srgb = colour.mm_colors_srgb(x, rng, VIZ)
    np.testing.assert_allclose(c[:, :3], np.vectorize(lin)(srgb), atol=1e-6)
