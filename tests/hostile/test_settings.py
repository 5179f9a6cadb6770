"""Non-finite numbers in settings (TOML has inf and nan literals; JSON has Infinity and NaN)
are refused by name, in every section, instead of rendering black or silently falling back."""
import json

import pytest

CASES = {
    "camera inf": ("[look]\ncamera = [inf, 0, 0]\n", "look].camera"),
    "camera nan": ("[look]\ncamera = [nan, nan, nan]\n", "look].camera"),
    "gap": ("[layout]\ngap = inf\n", "layout].gap"),
    "scatter": ("[layout]\nscatter = -inf\n", "layout].scatter"),
    "blast": ("[layout]\nblast = nan\n", "layout].blast"),
    "speed": ("[anim]\nspeed = inf\n", "anim].speed"),
    "spin": ("[anim]\nspin = nan\n", "anim].spin"),
    "seconds": ("[anim]\nseconds = inf\n", "anim].seconds"),
    "min size": ("[viz]\nmin_size = nan\n", "viz].min_size"),
    "elem scale": ("[viz]\nelem_scale = inf\n", "viz].elem_scale"),
    "legends": ("[deco]\nlegends = inf\n", "deco].legends"),
    "row guides": ("[deco]\nrow_guides = nan\n", "deco].row_guides"),
    "leaf min": ("[matrix.A]\nmin = -inf\n", "matrix.A].min"),
    "leaf max": ("[matrix.A]\nmax = nan\n", "matrix.A].max"),
    "dropout": ("[matrix.A]\ndropout = nan\n", "matrix.A].dropout"),
    "overflowing float": ("[layout]\ngap = 1e400\n", "layout].gap"),
    "rope theta": ("[model]\ncapture = \"c.npz\"\nrope_theta = inf\n", "model].rope_theta"),
}


@pytest.mark.parametrize("case", CASES)
def test_non_finite_setting(sandbox, case):
    text, where = CASES[case]
    sandbox.write("p.toml", 'expr = "A @ B"\n' + text)
    sandbox.write("old.png", b"old picture")
    sandbox.refused(sandbox.cli("check", "p.toml"), where, "finite")
    sandbox.refused(sandbox.cli("render", "p.toml", "--out", "old.png"), where, "finite")


@pytest.mark.parametrize("group, key, value", [
    ("layout", "gap", "Infinity"),
    ("anim", "speed", "NaN"),
    ("viz", "min size", "-Infinity"),
    ("left", "min", "Infinity"),
])
def test_non_finite_setting_in_an_mm_link(sandbox, group, key, value):
    params = {"expr": "L @ R", group: {key: 1}}
    if group == "left":
        params["left"] = {"name": "L", "h": 4, "w": 4, key: 1}
        params["right"] = {"name": "R", "h": 4, "w": 4}
    text = json.dumps(params).replace(f'"{key}": 1', f'"{key}": {value}')
    sandbox.refused(sandbox.cli("import-mm", text, "-o", "out.toml"), "finite")


def test_non_finite_in_a_compressed_link(sandbox):
    link = "https://bhosmer.github.io/mm/index.html?0=L%20%40%20R&1.2=Infinity&expr=0&layout=1&gap=2"
    sandbox.refused(sandbox.cli("import-mm", link), "gap", "finite")
