"""The framework registry: name -> :class:`~kfp_interop.frameworks.base.Framework`."""

from __future__ import annotations

from kfp_interop.errors import InvalidInputError, UnknownNameError, UnsupportedOperationError
from kfp_interop.frameworks.base import CAPABILITIES, Framework
from kfp_interop.registry import Registry

__all__ = ["FRAMEWORKS", "register_framework", "get_framework", "with_capability",
           "require_capability", "backbone_framework"]

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


def with_capability(capability: str) -> list[str]:
    """The registered frameworks that have ``capability`` (see
    :data:`~kfp_interop.frameworks.base.CAPABILITIES`)."""
    if capability not in CAPABILITIES:
        raise UnknownNameError(f"Unknown capability {capability!r}; known: "
                               f"{', '.join(CAPABILITIES)}.")
    return [n for n, f in FRAMEWORKS.items() if f.can(capability)]


def require_capability(name: str, capability: str, what: str) -> Framework:
    """The registered framework ``name``, which must have ``capability``.

    Raises:
        UnknownNameError: no such framework.
        UnsupportedOperationError: it lacks the capability (the message lists those that
            have it).
    """
    fw = FRAMEWORKS.get(name)
    if not fw.can(capability):
        have = with_capability(capability)
        raise UnsupportedOperationError(
            f"{what} needs a framework with capability {capability!r}; {name!r} has none. "
            f"Frameworks that have it: {', '.join(have) or '(none registered)'}.")
    return fw


def backbone_framework(path: str) -> Framework | None:
    """The framework with the ``finetune`` capability whose kind of pretrained model the
    file ``path`` is (:meth:`~kfp_interop.frameworks.base.Framework.backbone_file`), or
    ``None``. Where a framework of yours refines another (a subclass) and both take the
    file, yours reads it.

    Raises:
        InvalidInputError: unrelated frameworks both take the file (named).
    """
    takers = [FRAMEWORKS.get(n) for n in with_capability("finetune")
              if FRAMEWORKS.get(n).backbone_file(path)]
    most_specific = [fw for fw in takers
                     if not any(other is not fw and isinstance(other, type(fw))
                                for other in takers)]
    if len(most_specific) > 1:
        raise InvalidInputError(
            f"{path!r} is read as a pretrained model by several frameworks "
            f"({', '.join(fw.name for fw in most_specific)}): make their backbone_file "
            "tell their files apart.")
    return most_specific[0] if most_specific else None
