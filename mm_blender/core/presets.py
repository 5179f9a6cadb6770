"""Built-in presets (presets/*.toml) and resolving a SOURCE argument: a preset name or a path
to a TOML file."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import MMError
from .spec import Spec, load_toml

_PACKAGE = Path(__file__).resolve().parent.parent


def _presets_dir() -> Path:
    """An installed wheel has them inside the package (mm_blender/presets/); a checkout and
    the Blender extension have the one source, presets/ beside the package."""
    candidates = (_PACKAGE / "presets", _PACKAGE.parent / "presets")
    return next((c for c in candidates if c.is_dir()), candidates[0])


PRESETS_DIR = _presets_dir()


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    group: str
    path: Path


def list_presets(directory: Path = PRESETS_DIR) -> list[PresetInfo]:
    """Every preset with its one-line description and group, sorted by group then name."""
    if not directory.is_dir():
        raise MMError(f"the built-in presets folder '{directory}' is missing: reinstall "
                      "mm_blender")
    out = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise MMError(f"preset file '{path}' cannot be read: {e}") from None
        out.append(PresetInfo(path.stem, str(data.get("description", "")),
                              str(data.get("group", "other")), path))
    order = ["single", "expressions", "partitions", "attention", "lora", "other"]
    return sorted(out, key=lambda p: (order.index(p.group) if p.group in order else 99, p.name))


def resolve(source: str | Path) -> Path:
    """A preset name (e.g. 'intro_cube') or a path to a .toml file -> the file's path."""
    text = str(source)
    path = Path(text)
    if text.endswith(".toml") or path.parent != Path("."):
        if not path.is_file():
            from ..outputs import describe
            kind = describe(path)
            raise MMError(f"preset file '{path}' " + (f"is {kind}, not a preset file" if kind
                                                      else "does not exist"))
        return path
    candidate = PRESETS_DIR / f"{text}.toml"
    if candidate.is_file():
        return candidate
    names = [p.stem for p in sorted(PRESETS_DIR.glob("*.toml"))]
    close = [n for n in names if text.lower() in n.lower()][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else "; run 'python -m mm_blender presets' to list them"
    raise MMError(f"unknown preset {text!r}{hint}")


def load(source: str | Path) -> Spec:
    return load_toml(resolve(source))
