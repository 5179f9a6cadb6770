"""Every file a run writes: checked before any work (type, folder, whether it may be written
or replaced), then written to a temporary file beside it that is flushed and verified before
it replaces the target. A failed or interrupted write leaves the old file as it was.

    out = check_output("scene.blend", "blend")          # before any work
    with atomic(out) as tmp:                             # write tmp; verified, then moved
        save(tmp)

Doors that own the process (the CLI) call `guard_process()` so a full disk or a file size
limit is an error, not a silent kill, and SIGTERM / Ctrl-C remove what is half written.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import MMError

STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".webp")
KINDS = {
    "blend": (".blend",),
    "image": STILL_SUFFIXES,
    "video": (".mp4",),
    "capture": (".npz",),
    "preset": (".toml",),
}
NAMES = {"blend": "a .blend file", "image": "an image", "video": "an H.264 video",
         "capture": "a capture", "preset": "a preset"}

# What is being written now: removed when its write fails or the process is interrupted.
_PENDING: set[Path] = set()
_ON_INTERRUPT: list[Callable[[], None]] = []


def describe(path: Path) -> str:
    """What a path is, in words ('a folder', 'a FIFO (named pipe)', ...), '' if nothing."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return ""
    except OSError as e:
        return f"unreadable ({e.strerror})"
    for test, name in ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def check_output(path: str | os.PathLike, kind: str, what: str = "output") -> Path:
    """The absolute path of an output that can be written; MMError naming the problem if it
    cannot (wrong type, missing or read-only folder, a folder or FIFO in its place, a file
    this user may not replace). Writes nothing that stays."""
    path = Path(path).expanduser()
    if kind not in KINDS:
        raise AssertionError(kind)
    if path.suffix.lower() not in KINDS[kind]:
        raise MMError(f"cannot write {what} '{path}': {NAMES[kind]} must end in "
                      f"{', '.join(KINDS[kind])}, not {path.suffix or '(no suffix)'!r}")
    path = path.absolute()
    _check_folder(path.parent, what)
    kind_now = describe(path)
    if kind_now and kind_now != "a file":
        raise MMError(f"cannot write {what} '{path}': it is {kind_now}, not a file")
    if kind_now and not _may_replace(path):
        raise MMError(f"cannot write {what} '{path}': the file exists and this user may not "
                      "replace it")
    return path


def check_output_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """A folder that receives files (a PNG sequence): it may exist or will be created in an
    existing, writable parent."""
    path = Path(path).expanduser().absolute()
    kind_now = describe(path)
    if kind_now == "a folder":
        _check_folder(path, what)
    elif kind_now:
        raise MMError(f"cannot write {what} '{path}': it is {kind_now}, not a folder")
    else:
        _check_folder(path.parent, what)
    return path


def _check_folder(folder: Path, what: str) -> None:
    kind_now = describe(folder)
    if not kind_now:
        raise MMError(f"cannot write {what}: its folder '{folder}' does not exist")
    if kind_now != "a folder":
        raise MMError(f"cannot write {what}: '{folder}' is {kind_now}, not a folder")
    try:   # a real probe: permissions, read-only mounts, quotas
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".mm_probe_", delete=True)
        probe.close()
    except OSError as e:
        raise MMError(f"cannot write {what}: folder '{folder}' is not writable "
                      f"({e.strerror or e})") from None


def _may_replace(path: Path) -> bool:
    """A file the user could not write is one they may not replace either (even where the
    folder would allow the rename); a sticky folder (/tmp) keeps other users' files."""
    if not os.access(path, os.W_OK):
        return False
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if uid in (None, 0):
        return True
    parent = path.parent.stat()
    return not (parent.st_mode & stat.S_ISVTX and path.stat().st_uid != uid
                and parent.st_uid != uid)


# --- verified, atomic writes ------------------------------------------------------------------

def _temp_name(path: Path) -> Path:
    return path.parent / f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic(path: str | os.PathLike, verify: Callable[[Path], None] | None = None,
           what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends, the temporary file is
    flushed to disk, verified (by `verify`, else by its type) and renamed over `path`.
    Any failure removes it and raises MMError; the old file is untouched."""
    path = Path(path).absolute()
    tmp = _temp_name(path)
    _PENDING.add(tmp)
    try:
        yield tmp
        if not tmp.is_file():
            raise MMError(f"writing {what} '{path}' produced no file; the old one is unchanged")
        _fsync(tmp)
        (verify or verifier(path))(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise MMError(f"cannot write {what} '{path}': {e.strerror or e}; "
                      "the old file is unchanged") from None
    except MMError as e:
        message = str(e)
        if "unchanged" not in message:
            message = f"cannot write {what} '{path}': {message}; the old file is unchanged"
        raise MMError(message) from None
    finally:
        discard(tmp)


def temp_folder(near: str | os.PathLike) -> Path:
    """A temporary folder beside `near` (renderers write frames there). It is removed on an
    interrupt; the caller removes it with `discard` when done."""
    near = Path(near).absolute()
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{near.name}.partial-", dir=near.parent))
    except OSError as e:
        raise MMError(f"cannot write beside '{near}': {e.strerror or e}") from None
    _PENDING.add(tmp)
    return tmp


def discard(path: Path) -> None:
    """Remove a temporary file or folder of ours (and the `name@` Blender saves through)."""
    _remove(path)
    _remove(Path(f"{path}@"))
    _PENDING.discard(path)


def publish_files(files: list[Path], folder: str | os.PathLike) -> Path:
    """Verify finished files (each by its type) and move them into `folder`, created if
    needed: a frame sequence appears only once every frame is complete."""
    folder = Path(folder).absolute()
    try:
        for p in files:
            _fsync(p)
            try:
                verifier(p)(p)
            except MMError as e:
                raise MMError(f"cannot write '{p.name}' into '{folder}': {e}; nothing was "
                              "moved into the folder") from None
        folder.mkdir(parents=True, exist_ok=True)
        for p in files:
            os.replace(p, folder / p.name)
    except OSError as e:
        raise MMError(f"cannot write into '{folder}': {e.strerror or e}") from None
    return folder


def write_bytes(path: str | os.PathLike, data: bytes, what: str = "output") -> Path:
    """Write `data` to `path` atomically; verified by reading it back."""
    def same(tmp: Path) -> None:
        if tmp.read_bytes() != data:
            raise MMError(f"{what} '{path}' did not read back as written (disk full?)")

    with atomic(path, same, what) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
    return Path(path).absolute()


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:
        pass


# --- verifying what was written ----------------------------------------------------------------

def _bad(path: Path, why: str) -> MMError:
    return MMError(f"what was written is incomplete ({why}; is the disk full?)")


def _head_tail(path: Path, n: int = 16) -> tuple[bytes, bytes, int]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(n)
        f.seek(max(0, size - n))
        tail = f.read(n)
    return head, tail, size


def verify_nonempty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise _bad(path, "it is empty")


def verify_png(path: Path) -> None:
    head, tail, _ = _head_tail(path)
    if not head.startswith(b"\x89PNG\r\n\x1a\n") or not tail.endswith(b"IEND\xaeB`\x82"):
        raise _bad(path, "not a complete PNG")


def verify_jpeg(path: Path) -> None:
    head, tail, _ = _head_tail(path)
    if not head.startswith(b"\xff\xd8") or not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise _bad(path, "not a complete JPEG")


def verify_blend(path: Path) -> None:
    """Blender's header and its closing ENDB block, then Blender itself reopens the file's
    table of contents (without touching the open scene) where bpy is loaded."""
    head, tail, _ = _head_tail(path, 64)
    compressed = head.startswith(b"\x28\xb5\x2f\xfd")   # zstd: only the reopen can tell
    if not compressed and (not head.startswith(b"BLENDER") or b"ENDB" not in tail):
        raise _bad(path, "not a complete .blend")
    if "bpy" in sys.modules:
        import bpy
        before = set(bpy.data.libraries)
        try:
            with bpy.data.libraries.load(str(path)) as (src, _dst):
                list(src.objects)
        except (OSError, RuntimeError, ValueError):
            raise _bad(path, "Blender cannot read it back") from None
        finally:
            for lib in set(bpy.data.libraries) - before:
                bpy.data.libraries.remove(lib)


def verify_npz(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            if z.testzip() is not None:
                raise _bad(path, "a damaged .npz member")
    except (zipfile.BadZipFile, OSError, EOFError):
        raise _bad(path, "not a complete .npz") from None


def verify_mp4(path: Path) -> None:
    """The top-level boxes must tile the file exactly and hold ftyp and moov."""
    size = path.stat().st_size
    seen, pos = set(), 0
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                raise _bad(path, "a cut MP4 box")
            n = int.from_bytes(head[:4], "big")
            if n == 1 and len(head) == 16:
                n = int.from_bytes(head[8:16], "big")
            elif n == 0:
                n = size - pos
            if n < 8 or pos + n > size:
                raise _bad(path, "a cut MP4 box")
            seen.add(head[4:8])
            pos += n
    if not {b"ftyp", b"moov"} <= seen:
        raise _bad(path, "an MP4 without its index")


_VERIFIERS = {".png": verify_png, ".jpg": verify_jpeg, ".jpeg": verify_jpeg,
              ".blend": verify_blend, ".npz": verify_npz, ".mp4": verify_mp4}


def verifier(path: Path) -> Callable[[Path], None]:
    return _VERIFIERS.get(Path(path).suffix.lower(), verify_nonempty)


# --- the process: file size limits and interrupts ----------------------------------------------

def on_interrupt(cleanup: Callable[[], None]) -> None:
    """Run `cleanup` if the process is interrupted (the per-run Blender folder, ...)."""
    _ON_INTERRUPT.append(cleanup)


def clean_pending() -> None:
    for p in list(_PENDING):
        discard(p)


def _interrupted(signum, _frame) -> None:
    # Runs between Python bytecodes, possibly inside a Blender callback, where an exception
    # would be printed and swallowed: clean up here and leave at once.
    clean_pending()
    for cleanup in reversed(_ON_INTERRUPT):
        try:
            cleanup()
        except Exception:
            pass
    name = signal.Signals(signum).name
    try:
        print(f"mm_blender: error: interrupted ({name}); unfinished outputs were removed and "
              "the files they would have replaced are unchanged", file=sys.stderr, flush=True)
    finally:
        os._exit(2)


def guard_process() -> None:
    """For a process of our own (the CLI): a file size limit makes writes fail (EFBIG) instead
    of killing the process, and SIGTERM / SIGINT remove half-written outputs and temp folders."""
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)
