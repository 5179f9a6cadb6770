"""Build the Blender extension zip and check it: `python tools/build_extension.py --out dist`.

Runs Blender's own validator and builder (`blender --command extension validate|build` is a
plain script inside the bpy wheel, found without importing bpy), then checks what that
validator lets through: SPDX licences compatible with GPL-3.0-or-later, blender_version_min
at least 4.5.0 (the oldest line CI tests), a short reason for every permission, the version
matching the package, and a zip without tests, caches or bundled numpy. Exits 1 with a
message per problem.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The oldest Blender line CI tests (.ci/run); 4.2 lacks what sweeps use.
MIN_BLENDER = (4, 5, 0)
# Licences an add-on may carry: GPL-3.0-or-later itself or ones compatible with it.
GPL_COMPATIBLE = {
    "GPL-3.0-or-later", "GPL-3.0-only", "GPL-2.0-or-later", "LGPL-3.0-or-later",
    "LGPL-2.1-or-later", "AGPL-3.0-or-later", "MIT", "MIT-0", "BSD-2-Clause", "BSD-3-Clause",
    "Apache-2.0", "MPL-2.0", "Zlib", "ISC", "BSL-1.0", "CC0-1.0", "Unlicense", "0BSD",
}
PERMISSIONS = {"files", "network", "clipboard", "camera", "microphone"}
TERSE_MAX = 64
# Nothing under these may reach the zip (a user needs none of it inside Blender).
FORBIDDEN_IN_ZIP = re.compile(
    r"(^|/)(__pycache__|\.git|\.venv|\.pytest_cache|\.hypothesis|\.ci)(/|$)"
    r"|^(tests|docs|bench|tools|out|dist|build)/|\.egg-info/|\.pyc$|\.blend1$|^Makefile$"
    r"|^pyproject\.toml$"
    r"|^requirements.*\.txt$|^BENCHMARKS\.md$|(^|/)numpy/|\.whl$")
REQUIRED_IN_ZIP = ("blender_manifest.toml", "__init__.py", "mm_blender/__init__.py",
                   "mm_blender/ui/__init__.py", "mm_blender/ui/panel.py",
                   "render_jobs/render.py")


class Problem(Exception):
    pass


def bpy_scripts_dirs() -> list[Path]:
    """`<site-packages>/bpy/<version>/scripts` of the installed bpy wheel (not imported)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise Problem("the bpy wheel is not installed (pip install bpy==5.0.1, or `make setup`)")
    out = []
    for location in spec.submodule_search_locations:
        out.extend(sorted(Path(location).glob("*/scripts"), reverse=True))
    return out


def blender_ext_script() -> Path:
    for scripts in bpy_scripts_dirs():
        path = scripts / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
        if path.is_file():
            return path
    raise Problem("Blender's extension tool (addons_core/bl_pkg/cli/blender_ext.py) is not "
                  "inside the installed bpy wheel")


def valid_tags_file() -> Path | None:
    """Blender's list of allowed tags, as `blender --command extension` uses it."""
    for scripts in bpy_scripts_dirs():
        path = scripts / "modules" / "_bpy_internal" / "extensions" / "tags.py"
        if path.is_file():
            return path
    return None


def _version(text: str, where: str) -> tuple[int, ...]:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(text))
    if not m:
        raise Problem(f"{where}: {text!r} is not a version like \"4.5.0\"")
    return tuple(int(g) for g in m.groups())


def _terse(value, where: str) -> list[str]:
    if not isinstance(value, str) or not value.strip():
        return [f"{where}: give a short reason (a non-empty string)"]
    problems = []
    if len(value) > TERSE_MAX:
        problems.append(f"{where}: {len(value)} characters, at most {TERSE_MAX}")
    if not (value[-1].isalnum() or value[-1] in ")]}"):
        problems.append(f"{where}: must not end with punctuation ({value[-1]!r})")
    return problems


def check_manifest(manifest: dict, package_version: str | None = None) -> list[str]:
    """The rules Blender's validator does not enforce. Returns the problems found."""
    problems = []
    licences = manifest.get("license")
    if not isinstance(licences, list) or not licences:
        problems.append("license: give a list such as [\"SPDX:GPL-3.0-or-later\"]")
    else:
        for entry in licences:
            if not isinstance(entry, str) or not entry.startswith("SPDX:"):
                problems.append(f"license: {entry!r} must be an SPDX identifier written "
                                "\"SPDX:<id>\", e.g. \"SPDX:GPL-3.0-or-later\"")
            elif entry[5:] not in GPL_COMPATIBLE:
                problems.append(f"license: {entry[5:]!r} is not known to be compatible with "
                                "GPL-3.0-or-later, which Blender add-ons require")
    try:
        low = _version(manifest.get("blender_version_min", ""), "blender_version_min")
        if low < MIN_BLENDER:
            problems.append(f"blender_version_min: {manifest['blender_version_min']} is older "
                            f"than {'.'.join(map(str, MIN_BLENDER))}, the oldest Blender line "
                            "this add-on is tested on")
        if "blender_version_max" in manifest:
            high = _version(manifest["blender_version_max"], "blender_version_max")
            if high <= low:
                problems.append("blender_version_max must be later than blender_version_min")
    except Problem as e:
        problems.append(str(e))
    permissions = manifest.get("permissions", {})
    if not isinstance(permissions, dict):
        problems.append("permissions: must be a table of permission = \"reason\"")
    else:
        for key, reason in permissions.items():
            if key not in PERMISSIONS:
                problems.append(f"permissions: unknown permission {key!r}; known: "
                                f"{', '.join(sorted(PERMISSIONS))}")
            problems.extend(_terse(reason, f"permissions.{key}"))
    problems.extend(_terse(manifest.get("tagline", ""), "tagline"))
    if package_version is not None and manifest.get("version") != package_version:
        problems.append(f"version: the manifest says {manifest.get('version')!r} but "
                        f"mm_blender/__init__.py says {package_version!r}")
    if manifest.get("wheels"):
        problems.append("wheels: nothing is bundled (Blender ships numpy)")
    return problems


def package_version(source: Path) -> str | None:
    init = source / "mm_blender" / "__init__.py"
    if not init.is_file():
        return None
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init.read_text(encoding="utf-8"),
                  re.MULTILINE)
    return m.group(1) if m else None


def check_zip(path: Path) -> list[str]:
    problems = []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    for name in names:
        if FORBIDDEN_IN_ZIP.search(name):
            problems.append(f"{path.name}: must not contain {name}")
    present = set(names)
    for name in REQUIRED_IN_ZIP:
        if name not in present:
            problems.append(f"{path.name}: {name} is missing")
    if not any(n.startswith("presets/") and n.endswith(".toml") for n in names):
        problems.append(f"{path.name}: no presets/*.toml inside")
    return problems


def run_blender_ext(args: list[str]) -> str:
    cmd = [sys.executable, str(blender_ext_script()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise Problem(f"Blender's extension tool failed ({' '.join(args[:1])}):\n{output}")
    return output


def build(source: Path, out_dir: Path, quiet: bool = False) -> Path:
    manifest_path = source / "blender_manifest.toml"
    try:
        manifest = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Problem(f"{manifest_path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise Problem(f"{manifest_path} is not valid TOML: {e}") from None
    problems = check_manifest(manifest, package_version(source))
    if problems:
        raise Problem("blender_manifest.toml:\n  " + "\n  ".join(problems))

    tags = valid_tags_file()
    tag_args = ["--valid-tags", str(tags)] if tags else []
    log = run_blender_ext(["validate", *tag_args, str(source)])
    if not quiet and log:
        print(log)
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    log = run_blender_ext(["build", "--source-dir", str(source), "--output-filepath",
                           str(zip_path), *tag_args])
    if not quiet and log:
        print(log)
    run_blender_ext(["validate", *tag_args, str(zip_path)])
    problems = check_zip(zip_path)
    if problems:
        raise Problem("the built zip:\n  " + "\n  ".join(problems))
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="dist", help="output folder (default: dist)")
    parser.add_argument("--source", default=str(ROOT),
                        help="extension source (default: the repository)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        path = build(Path(args.source).resolve(), Path(args.out).resolve(), args.quiet)
    except Problem as e:
        print(f"build_extension: error: {e}", file=sys.stderr)
        return 1
    print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB): install it with Edit > "
          "Preferences > Get Extensions > Install from Disk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
