"""The name -> object registry behind every extension point: frameworks, exporters,
metadata renderers, storage schemes and layouts, deploy targets, reference pipelines.

An unknown key fails with :class:`~kfp_interop.errors.UnknownNameError` that lists the
known keys and says how to add one. A registry may also name an entry-point group:
packages installed beside kfp-interop then extend it without editing this tree (their
entry points are loaded the first time the registry is asked for a name it lacks, or
for its list of names). See ``docs/extending.md``.
"""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from kfp_interop.errors import InvalidInputError, UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``kind`` is used in error messages).

    Args:
        kind: what an entry is, e.g. ``"deploy target"``.
        how_to_add: the hint an unknown-name error ends with.
        entry_point_group: optional ``importlib.metadata`` entry-point group whose
            entries name the objects to register under the entry point's name.
    """

    def __init__(self, kind: str, how_to_add: str = "", *, entry_point_group: str = ""):
        self.kind = kind
        self.how_to_add = how_to_add
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._plugins_loaded = not entry_point_group

    def register(self, name: str, item: T, *, replace: bool = False) -> T:
        """Add ``item`` under ``name``; refuse a second entry unless ``replace``."""
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"A {self.kind} name must be a non-empty string, not {name!r}.")
        if name in self._items and not replace:
            raise InvalidInputError(f"{self.kind} {name!r} is already registered; pass replace=True.")
        self._items[name] = item
        return item

    def add(self, item: T, *, replace: bool = False) -> T:
        """Register ``item`` under its own ``name`` attribute (frameworks, targets)."""
        return self.register(item.name, item, replace=replace)  # type: ignore[attr-defined]

    def unregister(self, name: str) -> T:
        """Remove and return an entry (for tests and plugins that replace one)."""
        return self._items.pop(name)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._items:
                continue
            self.register(ep.name, ep.load())

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            pass
        self._load_plugins()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            hint = f" {self.how_to_add}" if self.how_to_add else ""
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}; known: {', '.join(self.names())}.{hint}"
            ) from None

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._items[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
