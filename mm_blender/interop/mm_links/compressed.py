"""mm's compressed flat form: every dotted key path spelt with numbers, the numbers' names in
the same query (`0.1=32&left=0&h=1`), values typed as mm types them."""
from __future__ import annotations

import re
from typing import Any

from ...errors import MMError
from .defaults import _BOOL_KEYS, _NUMBER_KEYS


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "…"


def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, prefix + key + "."))
        else:
            out.append((prefix + key, value))
    return out


def _unflatten(flat: dict[str, Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MMError(f"mm link: compressed key {path!r} runs through a value")
        if isinstance(node.get(last), dict):
            raise MMError(f"mm link: compressed key {path!r} is both a value and a group")
        node[last] = value
    return tree


def _js_text(value: Any) -> str:
    """A value as JavaScript's String() writes it (what URLSearchParams carries)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def compress(params: dict) -> list[tuple[str, str]]:
    """mm's compressed flat form of a params tree, as (key, value) query pairs: each dotted
    path is written `<number of its parent path>.<number of its last key>`, and the
    numbers' names follow as `name=number` pairs."""
    names: dict[str, str] = {}

    def number(name: str) -> str:
        if name not in names:
            names[name] = str(len(names))
        return names[name]

    pairs = []
    for path, value in _flatten(params):
        parent, dot, last = path.rpartition(".")
        key = f"{number(parent)}.{number(last)}" if dot else number(path)
        pairs.append((key, _js_text(value)))
    pairs.extend((name, num) for name, num in names.items())
    return pairs


def uncompress(pairs: list[tuple[str, str]] | dict[str, str]) -> dict:
    """A params tree from mm's compressed flat form (values typed as mm types them)."""
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    names: dict[str, str] = {}
    props: list[tuple[str, str]] = []
    for key, value in items:
        if re.fullmatch(r"\d+(\.\d+)?", key):
            props.append((key, value))
        else:
            names[value] = key
    if not props:
        raise MMError("mm link: no params=, config= or compressed (numbered) parameters found")
    flat = {}
    for key, value in props:
        parts = key.split(".")
        missing = [p for p in parts if p not in names]
        if missing:
            raise MMError(f"mm link: compressed key {key!r} uses number {missing[0]}, which the "
                          "link's name table does not define (is the link cut short?)")
        path = ".".join(names[p] for p in parts)
        flat[path] = _typed(path, value)
    return _unflatten(flat)


def _typed(path: str, text: str) -> Any:
    key = path.rpartition(".")[2]
    if key in _BOOL_KEYS:
        return text == "true"
    if key in _NUMBER_KEYS:
        return _number_text(text, path)
    return text


def _number_text(text: str, where: str) -> int | float:
    s = text.strip()
    if s == "":
        return 0  # as JavaScript's Number('')
    try:
        x = float(s)
    except ValueError:
        raise MMError(f"mm link: {where} = {_short(text)!r} is not a number") from None
    return int(x) if x.is_integer() and abs(x) < 1 << 53 else x

