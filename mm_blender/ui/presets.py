"""Presets as the panel sees them: the built-in ones (read-only, presets/*.toml) and the
user's own, saved as TOML in the extension's user folder. Listing, reading, saving,
deleting, and the items of the preset picker."""
from __future__ import annotations

import os
import re
import tempfile
import textwrap
import zlib
from pathlib import Path

import bpy

from .. import outputs
from ..core import presets as core_presets
from ..core import spec as specmod
from ..core import toml_write
from ..errors import MMError

USER_GROUP = "user"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")
_user_dir_override: Path | None = None        # tests point this at a folder of their own


def extension_package(package: str | None = __package__) -> str | None:
    """`bl_ext.<repo>.<id>` when running as an installed extension, else None."""
    parts = (package or "").split(".")
    if len(parts) >= 3 and parts[0] == "bl_ext":
        return ".".join(parts[:3])
    return None


def user_dir() -> Path:
    """Where user presets live: the extension's user folder (kept across upgrades); outside
    an extension, Blender's user scripts/presets folder; failing that, a temporary folder."""
    if _user_dir_override is not None:
        _user_dir_override.mkdir(parents=True, exist_ok=True)
        return _user_dir_override
    package = extension_package()
    candidates = []
    if package:
        candidates.append(lambda: bpy.utils.extension_path_user(package, path="presets",
                                                                create=True))
    candidates.append(lambda: bpy.utils.user_resource(
        "SCRIPTS", path=os.path.join("presets", "mm_blender"), create=True))
    for candidate in candidates:
        try:
            path = candidate()
        except (ValueError, OSError, RuntimeError):
            continue
        if path:
            return Path(path)
    path = Path(tempfile.gettempdir()) / "mm_blender_presets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_user_dir(path: str | Path | None) -> None:
    """Use another folder for user presets (None: the default)."""
    global _user_dir_override
    _user_dir_override = Path(path) if path is not None else None
    _USER_CACHE.clear()


_BUILTIN: list[core_presets.PresetInfo] | None = None


def builtin() -> list[core_presets.PresetInfo]:
    """The built-in presets (they do not change while Blender runs)."""
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = core_presets.list_presets()
    return _BUILTIN


def builtin_names() -> set[str]:
    return {p.name for p in builtin()}


_USER_CACHE: dict = {}


def user_presets() -> list[core_presets.PresetInfo]:
    """Saved presets, by name. Unreadable files are skipped (the picker must always draw);
    loading one reports why."""
    directory = user_dir()
    try:
        stamp = (str(directory), directory.stat().st_mtime_ns,
                 tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*.toml"))))
    except OSError:
        return []
    if _USER_CACHE.get("stamp") == stamp:
        return _USER_CACHE["list"]
    out = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = specmod.read_toml(path)
        except MMError:
            data = {"description": "(cannot be read)"}
        out.append(core_presets.PresetInfo(path.stem, str(data.get("description", "")),
                                           USER_GROUP, path))
    _USER_CACHE.update(stamp=stamp, list=out)
    return out


def find(name: str) -> core_presets.PresetInfo:
    for info in builtin():
        if info.name == name:
            return info
    for info in user_presets():
        if info.name == name:
            return info
    raise MMError(f"unknown preset {name!r}")


def is_builtin(name: str) -> bool:
    return name in builtin_names()


def read(name: str) -> tuple[dict, Path]:
    """A preset's table, validated, and the folder its relative paths are read from."""
    info = find(name)
    data = specmod.read_toml(info.path)
    specmod.from_dict(data, name=info.name, origin=str(info.path), base_dir=info.path.parent)
    data.setdefault("name", info.name)
    return data, info.path.parent


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME_RE.fullmatch(name):
        raise MMError(f"preset name {name!r}: use letters, digits, '_' and '-' "
                      "(at most 64, starting with a letter or digit)")
    if is_builtin(name):
        raise MMError(f"{name!r} is a built-in preset and cannot be overwritten; "
                      "choose another name")
    return name


def _absolute(path: str, base_dir: str) -> str:
    if not path or not base_dir or os.path.isabs(path) or path.startswith("//"):
        return path
    return str((Path(base_dir) / path).resolve())


def save(name: str, data: dict, *, base_dir: str = "") -> Path:
    """Write a user preset (validated first). Relative file paths are made absolute, since
    the preset moves away from the folder they were relative to."""
    name = check_name(name)
    data = {**data, "name": name}
    if base_dir:
        data["matrix"] = {k: ({**t, "file": _absolute(t["file"], base_dir)} if "file" in t else t)
                          for k, t in data.get("matrix", {}).items()}
        if not data["matrix"]:
            del data["matrix"]
        if "model" in data:
            data["model"] = {k: (_absolute(v, base_dir) if k in ("text", "capture") else v)
                             for k, v in data["model"].items()}
    specmod.from_dict(data, name=name, origin=f"preset {name!r}")
    path = outputs.check_output(user_dir() / f"{name}.toml", "preset", "preset")
    outputs.write_bytes(path, toml_write.dumps(data).encode("utf-8"), "preset")
    _USER_CACHE.clear()
    return path


def delete(name: str) -> Path:
    if is_builtin(name):
        raise MMError(f"{name!r} is a built-in preset and cannot be deleted")
    path = user_dir() / f"{name}.toml"
    if not NAME_RE.fullmatch(name) or not path.is_file():
        raise MMError(f"there is no saved preset called {name!r}")
    try:
        path.unlink()
    except OSError as e:
        raise MMError(f"cannot delete '{path}': {e.strerror}") from None
    _USER_CACHE.clear()
    return path


# --- the picker ------------------------------------------------------------------------------

_ITEMS: list = []      # Blender keeps pointers into the strings: hold a reference


def item_number(name: str) -> int:
    """A stable number per name, so the picked preset survives the list changing."""
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def enum_items() -> list:
    """Items for an EnumProperty: a heading per group, then its presets (tooltip: the
    description)."""
    from .props import GROUP_LABELS
    labels = {**GROUP_LABELS, USER_GROUP: "Your Presets"}
    try:
        shipped = builtin()
    except MMError:           # a broken built-in file: `mm.load_preset` reports it by name
        shipped = []
    items = []
    group = None
    for info in [*shipped, *user_presets()]:
        if info.group != group:
            group = info.group
            items.append(("", labels.get(group, group.title()), ""))
        items.append((info.name, info.name, info.description or info.name, "",
                      item_number(info.name)))
    _ITEMS[:] = items
    return _ITEMS


def description_lines(name: str, width: int = 44) -> list[str]:
    try:
        info = find(name)
    except MMError:
        return []
    return textwrap.wrap(info.description, width) if info.description else []
