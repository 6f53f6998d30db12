"""The framework registry: name -> :class:`~kfp_interop.frameworks.base.Framework`."""

from __future__ import annotations

from kfp_interop.errors import InvalidInputError, UnknownNameError
from kfp_interop.frameworks.base import Framework
from kfp_interop.registry import Registry

__all__ = ["FRAMEWORKS", "register_framework", "get_framework"]

FRAMEWORKS: Registry[Framework] = Registry(
    "framework",
    "Add one with kfp_interop.frameworks.register_framework(instance) (docs/extending.md).",
    entry_point_group="kfp_interop.frameworks")


#: ``register_framework(instance, replace=False)``: register a framework under its ``name``.
register_framework = FRAMEWORKS.add


def get_framework(name: str, family: str | None = None) -> Framework:
    """The registered framework ``name``, optionally required to be of ``family``.

    Raises:
        UnknownNameError: no such framework (the message lists the known ones).
        InvalidInputError: the framework is of another family.
    """
    if family is None:
        return FRAMEWORKS.get(name)
    known = [n for n, f in FRAMEWORKS.items() if f.family == family]
    if name not in FRAMEWORKS:
        raise UnknownNameError(f"Unknown {family} framework {name!r}; known: "
                               f"{', '.join(known)}. {FRAMEWORKS.how_to_add}")
    fw = FRAMEWORKS.get(name)
    if fw.family != family:
        raise InvalidInputError(f"Framework {name!r} is a {fw.family} framework; this step "
                                f"takes a {family} one: {', '.join(known)}.")
    return fw
