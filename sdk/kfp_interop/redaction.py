"""Credentials out of what the project says: user info in any URI
(``scheme://user:secret@host``) is replaced by ``***`` in error messages, step outputs,
``error.json`` and ``summary.json``, and taken out of the MLflow tracking URI before
MLflow sees it (:func:`split_userinfo`; the credentials go to MLflow's own variables)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact", "redact_all", "split_userinfo"]

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s@'\"]+)@")


def redact(text: str) -> str:
    """``text`` with the user info of every URI in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text) if text else text


def redact_all(value: Any) -> Any:
    """:func:`redact` applied to every string inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_all(v) for v in value)
    return value


def split_userinfo(uri: str) -> tuple[str, str | None, str | None]:
    """``http://user:secret@host/p`` -> (``http://host/p``, ``user``, ``secret``)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return (urlunsplit(parts._replace(netloc=host)), unquote(user) or None,
            unquote(password) if password else None)
