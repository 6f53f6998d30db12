"""A tiny name -> object registry shared by exporters, estimators and pipelines.

An unknown key fails with :class:`~kfp_interop.errors.UnknownNameError` that lists the
known keys and says how to add one.
"""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from kfp_interop.errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``kind`` is used in error messages)."""

    def __init__(self, kind: str, how_to_add: str = ""):
        self.kind = kind
        self.how_to_add = how_to_add
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, replace: bool = False) -> T:
        if name in self._items and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass replace=True.")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            hint = f" {self.how_to_add}" if self.how_to_add else ""
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}.{hint}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
