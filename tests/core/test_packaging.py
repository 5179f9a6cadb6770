"""The supported Blender lines say the same thing everywhere: the manifest's minimum is the
line CI tests in .venv-4.5, and the `blender` extra admits exactly the pinned wheels CI runs;
the `models` extra pins what requirements.txt pins. Presets are found from a checkout."""
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from mm_blender.core import presets

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name] = version
    return out


def test_manifest_minimum_is_the_oldest_line_ci_tests():
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    lts = re.search(r"^LTS := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    assert manifest["blender_version_min"] == f"{lts}.0"
    assert pins(ROOT / f"requirements-blender-{lts}.txt")["bpy"].startswith(f"{lts}.")
    assert "make test-lts" in (ROOT / ".ci" / "run").read_text()


def test_blender_extra_admits_both_tested_wheels_and_no_untested_line():
    bpy, = (Requirement(r) for r in EXTRAS["blender"])
    tested = [pins(ROOT / "requirements.txt")["bpy"],
              pins(ROOT / "requirements-blender-4.5.txt")["bpy"]]
    assert all(bpy.specifier.contains(v) for v in tested), (bpy, tested)
    assert not any(bpy.specifier.contains(v) for v in ("4.2.23", "4.4.0", "5.1.0"))


def test_models_extra_pins_what_requirements_pin():
    main = pins(ROOT / "requirements.txt")
    for text in EXTRAS["models"]:
        req = Requirement(text)
        assert str(req.specifier) == f"=={main[req.name]}", text


def test_a_checkout_reads_the_top_level_presets_folder():
    assert presets.PRESETS_DIR == ROOT / "presets"
    assert not (ROOT / "mm_blender" / "presets").exists()   # one source, no copy committed
    assert {p.name for p in presets.list_presets()} == {p.stem for p in
                                                        (ROOT / "presets").glob("*.toml")}
