"""Row guides read on both looks: light lines on the dark look (as mm's white guides), dark
ones on paper; thick enough to cover a pixel at 1280 wide on big scenes."""
import numpy as np

from mm_blender.core import presets, scene_plan
from mm_blender.scene import decor


def srgb(linear):
    c = np.asarray(linear, float)[:3]
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def test_row_guides_are_light_on_dark_and_dark_on_paper():
    plan = scene_plan.plan_from_spec(presets.load("intro_cube"))
    guides = next(l for l in plan.lines if l.key == "row_guides")
    scale = decor.scene_scale(plan.bounds_min, plan.bounds_max)
    for look, test in (("dark", lambda v: v > 0.6), ("paper", lambda v: v < 0.4)):
        segs, cols, radii = decor.gather_lines([guides], scale, look)
        assert len(segs) == len(guides.segments)
        assert all(test(v) for v in srgb(cols[0])), (look, srgb(cols[0]))
        # a pixel at 1280 wide of a frame about the scene's size
        assert 2 * radii.min() >= decor.MIN_THICKNESS_FRACTION * scale
    # paper takes the complement of the dark look's lightness
    np.testing.assert_allclose(srgb(decor.look_color(guides.color, "paper")),
                               1 - srgb(guides.color), atol=1e-3)
