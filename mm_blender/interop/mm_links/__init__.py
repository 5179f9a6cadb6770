"""mm links and our presets, both ways: read mm's `?params=` JSON, its compressed flat form and
`?config=` files into a preset dict (listing what we cannot keep), and write a spec as an mm link.

mm keeps its whole state in the URL (index.html reads it on load): `?params=<JSON>`, or, once
that query passes 2048 characters, a flat form in which every dotted key path is spelt with
numbers and the numbers' names travel in the same query (`0.1=32&left=0&h=1`), or
`?config=<url of a JSON file>`. The params tree is authoritative; its `expr` is regenerated
from it. No bpy here.

The package, along its seams: `defaults` (mm's defaults and key tables), `compressed` (the flat
form), `importing` (mm params -> our preset dict, `import_mm`), `exporting` (spec -> params and
link), `views` (placements and camera). Reading text (links, config files, JSON) lives here.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ...core import expr as exprmod
from ...core.file_headers import json_depth
from ...core.initialisers import network_off
from ...errors import MMError
from .compressed import _short, compress, uncompress
from .defaults import (CONFIG_MAX_BYTES, CONFIG_TIMEOUT_S, MM_ANIM, MM_BLOCK, MM_DECO,
                       MM_EPILOGUES, MM_LAYOUT, MM_LEFT, MM_PLACEMENT, MM_RIGHT, MM_URL, MM_VIZ,
                       TEXT_MAX_BYTES, URL_LIMIT)
from .exporting import mm_link_from_spec, mm_params_from_spec
from .importing import _check_params, import_mm, spec_dict_from_mm
from .views import camera_direction, child_placement, dataclass_placement

__all__ = ["MM_URL", "URL_LIMIT", "compress", "uncompress", "mm_params_from_text",
           "spec_dict_from_mm", "import_mm", "mm_params_from_spec", "mm_link_from_spec",
           "camera_direction", "child_placement", "dataclass_placement", "MM_ANIM", "MM_BLOCK",
           "MM_DECO", "MM_EPILOGUES", "MM_LAYOUT", "MM_LEFT", "MM_PLACEMENT", "MM_RIGHT", "MM_VIZ"]


# --- reading text: links, compressed links, config files, JSON ------------------------------

def mm_params_from_text(text: str, *, allow_network: bool = True) -> dict:
    """mm's params tree from an mm URL (`?params=`, compressed, `?config=`), a bare query
    string, pasted JSON, or the path of a file holding any of those."""
    return _params_from_text(text, allow_network, depth=0)


def _params_from_text(text: str, allow_network: bool, depth: int) -> dict:
    if not isinstance(text, str):
        raise MMError(f"mm link: expected text, got {type(text).__name__}")
    s = text.strip()
    if not s:
        raise MMError("mm link: nothing to import (paste an mm URL or its params JSON)")
    if s.startswith("{"):
        return _check_params(_json(s, "pasted JSON"), "pasted JSON")
    if depth == 0 and "\n" not in s and _is_file(s):
        path = Path(s).expanduser()
        try:
            return _params_from_text(_read_local(path, "file"), allow_network, depth + 1)
        except _NotALink:   # named by the file, not by its contents (which may be private)
            raise MMError(f"mm link: file '{path}' holds no mm URL, query string or params "
                          "JSON") from None
    query = _query_of(s)
    if query is None:
        raise _NotALink(f"mm link: {_short(s)!r} is not an mm URL (…index.html?params=…), "
                        "a query string, JSON text or an existing file")
    return _params_from_query(query, allow_network)


class _NotALink(MMError):
    """A file's text is not a link: reported by the file's name."""



def _is_file(s: str) -> bool:
    try:
        return Path(s).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _query_of(s: str) -> str | None:
    s = s.split("#", 1)[0]
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", s) or "?" in s:
        if "?" not in s:
            raise _NotALink(f"mm link: {_short(s)!r} has no '?params=', '?config=' or "
                            "compressed parameters after the page address")
        return s.split("?", 1)[1]
    if re.match(r"(params|config|\d+(\.\d+)?)=", s):
        return s
    return None


def _params_from_query(query: str, allow_network: bool) -> dict:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise MMError("mm link: the query after '?' is empty")
    keys = dict(pairs)
    if "params" in keys:
        return _check_params(_json(keys["params"], "the link's params="), "the link's params=")
    if "config" in keys:
        return _check_params(_load_config(keys["config"], allow_network),
                             f"config {keys['config']!r}")
    return _check_params(uncompress(pairs), "the compressed link")


# JSON levels a params tree may use: a level per matmul plus a few for settings groups
MAX_JSON_DEPTH = 2 * exprmod.MAX_DEPTH + 8


def _json(text: str, what: str) -> Any:
    if json_depth(text.encode("utf-8", "surrogatepass")) > MAX_JSON_DEPTH:
        raise MMError(f"mm link: {what} nests more than {MAX_JSON_DEPTH} levels deep (the "
                      "depth limit)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MMError(f"mm link: {what} is not valid JSON ({e.msg} at line {e.lineno}, "
                      f"column {e.colno})") from None
    except RecursionError:
        raise MMError(f"mm link: {what} is nested too deeply") from None


def _read_local(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(TEXT_MAX_BYTES + 1)
    except OSError as e:
        raise MMError(f"mm link: {what} '{path}' cannot be read: {e.strerror}") from None
    if len(raw) > TEXT_MAX_BYTES:
        raise MMError(f"mm link: {what} '{path}' is larger than {TEXT_MAX_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MMError(f"mm link: {what} '{path}' is not UTF-8 text") from None


def _load_config(value: str, allow_network: bool) -> Any:
    """`?config=`: JSON from an http(s) URL (if allowed) or from a local file."""
    where = f"config {_short(value)!r}"
    scheme = urllib.parse.urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        if not allow_network:
            raise MMError(network_off(f"mm link: {where} must be downloaded",
                                      "or save the JSON and give its path"))
        return _json(_download(value, where), where)
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(value).path))
        return _json(_read_local(path, "config file"), where)
    if scheme and not re.fullmatch(r"[A-Za-z]", scheme):  # 'C:' is a Windows drive, not a scheme
        raise MMError(f"mm link: {where} is a {scheme}: URL; only http(s) URLs and local files "
                      "are read")
    path = Path(value).expanduser()
    if not _is_file(value):
        raise MMError(f"mm link: {where} is neither an http(s) URL nor an existing file")
    return _json(_read_local(path, "config file"), where)


def _download(url: str, where: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "mm_blender"})
    try:
        with urllib.request.urlopen(request, timeout=CONFIG_TIMEOUT_S) as response:
            raw = response.read(CONFIG_MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise MMError(f"mm link: {where}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise MMError(f"mm link: {where} could not be downloaded ({reason})") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise MMError(f"mm link: {where} is larger than {CONFIG_MAX_BYTES} bytes; "
                      "not an mm params file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MMError(f"mm link: {where} is not UTF-8 text") from None

