"""Writing files so that a reader never sees half of one, and hashing them.

Every writer in kfp-interop goes through :func:`atomic_write` (or one of its wrappers):
the bytes go to a temporary file in the destination's folder, are flushed and fsynced,
and the file is renamed into place with :func:`os.replace` (atomic on POSIX when both
names are on one file system, which the same folder guarantees). A crash or an error
leaves the old file, or nothing, never a truncated file under the final name; the
temporary file is removed on error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from typing import IO, Any, Callable, Iterator

__all__ = ["atomic_path", "atomic_write", "atomic_writer", "atomic_write_json", "atomic_copy",
           "move", "sha256_file", "sha256_bytes"]

_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "", replace: bool = True
                ) -> Iterator[str]:
    """A temporary path beside ``path`` for writers that want a file name (some pick the
    format by its extension: give it as ``suffix``); on a clean exit the file written
    there is fsynced and renamed to ``path``, on error it is removed. With
    ``replace=False`` a file already at ``path`` stays and :class:`FileExistsError` is
    raised (the new file is linked into place, which fails rather than replaces).

    Example:
        >>> with atomic_path("model.json", suffix=".json") as tmp:
        ...     booster.save_model(tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.",
                               suffix=f".partial{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.remove(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """A file object writing to a temporary file beside ``path``; on a clean exit it
    replaces ``path`` (see :func:`atomic_path`).

    Example:
        >>> with atomic_writer("out.txt", "w") as f:
        ...     f.write("complete or absent")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f


def atomic_write(path: str | os.PathLike, data: bytes | str) -> str:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; return the path."""
    with atomic_writer(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    return os.fspath(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2,
                      sort_keys: bool = True, default: Callable | None = None) -> str:
    """Write ``obj`` as JSON (a trailing newline) atomically; return the path."""
    return atomic_write(path, json.dumps(obj, indent=indent, sort_keys=sort_keys,
                                         default=default) + "\n")


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike, *, replace: bool = True
                ) -> str:
    """Copy the file ``src`` to ``dst`` atomically; return ``dst``. ``replace=False``:
    a file already at ``dst`` stays (:class:`FileExistsError`)."""
    with atomic_path(dst, replace=replace) as tmp:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
    return os.fspath(dst)


def move(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Move a complete file into place (atomic when both are on one file system, e.g. a
    staging folder beside the destination); creates the destination's folder."""
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    os.replace(src, dst)
    return os.fspath(dst)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
