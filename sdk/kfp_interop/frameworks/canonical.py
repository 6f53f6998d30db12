"""Reproducible zip-based model files (skops, Keras ``.keras``).

Both formats are a zip of JSON and arrays, and both write what differs from one process
to the next although the model is the same: object identities taken from ``id()`` (skops'
``__id__`` and its ``<id>.npy`` array files, Keras' ``shared_object_id``), the save time
(Keras' ``date_saved``) and the zip entries' times. :func:`canonical_zip` renumbers the
identities in order of first appearance (a renaming: which objects are shared is kept),
sets the times to 1980-01-01 (or ``$SOURCE_DATE_EPOCH``, the reproducible-builds
convention), and writes the entries in the same order. The same model then gives the
same bytes, so its sha256 is the same in every run.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from typing import Any

__all__ = ["canonical_zip", "ID_KEYS"]

#: JSON keys whose integer values are object identities
ID_KEYS = ("__id__", "shared_object_id")
_ID_FILE = re.compile(r"^(\d+)(\.npy)$")


def _fixed_time() -> tuple[int, int, int, int, int, int]:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return time.gmtime(max(int(epoch), 315532800))[:6]  # zip times start in 1980
    return (1980, 1, 1, 0, 0, 0)


def _renumber(node: Any, ids: dict[int, int]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ID_KEYS and isinstance(value, int) and not isinstance(value, bool):
                out[key] = ids.setdefault(value, len(ids) + 1)
            elif key == "file" and isinstance(value, str) and _ID_FILE.match(value):
                stem, ext = _ID_FILE.match(value).groups()
                out[key] = f"{ids.setdefault(int(stem), len(ids) + 1)}{ext}"
            elif key == "date_saved" and isinstance(value, str):
                out[key] = time.strftime("%Y-%m-%d@%H:%M:%S", _fixed_time() + (0, 0, 0))
            else:
                out[key] = _renumber(value, ids)
        return out
    if isinstance(node, list):
        return [_renumber(v, ids) for v in node]
    return node


def canonical_zip(data: bytes) -> bytes:
    """The same archive with identities renumbered and times fixed (see the module)."""
    ids: dict[int, int] = {}
    source = zipfile.ZipFile(io.BytesIO(data))
    members = source.infolist()
    contents: dict[str, bytes] = {}
    for info in members:  # JSON first, so array files follow the ids the JSON gave
        if info.filename.endswith(".json"):
            doc = json.loads(source.read(info))
            contents[info.filename] = json.dumps(_renumber(doc, ids)).encode()
    out = io.BytesIO()
    stamp = _fixed_time()
    with zipfile.ZipFile(out, "w") as target:
        for info in members:
            name = info.filename
            body = contents.get(name)
            if body is None:
                body = source.read(info)
                match = _ID_FILE.match(name)
                if match:
                    name = f"{ids.setdefault(int(match.group(1)), len(ids) + 1)}{match.group(2)}"
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            target.writestr(entry, body)
    return out.getvalue()
