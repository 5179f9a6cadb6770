"""A small TOML writer for preset tables (the standard library only reads TOML).

Handles what presets hold: strings, ints, floats (shortest exact form, always with a point or
exponent), bools, inline arrays of those, and nested tables with any key (quoted when needed).
`tomllib.loads(dumps(d)) == d` for every such dict.
"""
from __future__ import annotations

import math
import re

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key) -> str:
    if not isinstance(key, str):
        raise TypeError(f"TOML keys are strings, got {key!r}")
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)  # the shortest text that reads back to the same double; has '.' or 'e'


def _value(value, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        raise TypeError(f"{where}: tables inside arrays are not supported")
    raise TypeError(f"{where}: cannot write {type(value).__name__} value {value!r} as TOML")


def _is_table(value) -> bool:
    return isinstance(value, dict)


def _write_table(table: dict, path: list[str], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not _is_table(v)]
    tables = [(k, v) for k, v in table.items() if _is_table(v)]
    # A table with only sub-tables needs no header of its own (TOML defines it implicitly);
    # an empty table does, or it would vanish.
    if path and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(path) + "]")
    where = ".".join(path) or "top level"
    for key, value in scalars:
        lines.append(f"{_key(key)} = {_value(value, where + '.' + str(key))}")
    for key, value in tables:
        _write_table(value, path + [_key(key)], lines)


def dumps(data: dict) -> str:
    """TOML text for a dict of scalars, arrays of scalars and nested dicts."""
    if not isinstance(data, dict):
        raise TypeError("dumps expects a dict")
    lines: list[str] = []
    _write_table(data, [], lines)
    return "\n".join(lines) + "\n"
