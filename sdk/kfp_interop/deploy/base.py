"""What a deploy target is, and the registry of targets.

A target owns everything about where a model goes: how it is deployed, what "ready"
means, where its endpoint is, and how it is rolled back, promoted and deleted. The
deploy flow, the pipeline steps and the CLI ask the registry, never
``if target == "kserve"``. Kubernetes targets share one flow
(:class:`~kfp_interop.deploy.kubernetes.KubernetesTarget`) and differ only in their spec
class (manifest, admission rules, readiness, endpoint, promote patch).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

from kfp_interop.errors import InvalidInputError, UnsupportedOperationError
from kfp_interop.registry import Registry

__all__ = ["DeployTarget", "TargetOption", "DEPLOY_TARGETS", "register_target"]


@dataclasses.dataclass(frozen=True)
class TargetOption:
    """One option a target takes beyond the common ones of :meth:`DeployTarget.deploy`:
    its name, type (``str``, ``int``, ``bool``) and default."""

    name: str
    type: type
    default: Any

    def parse(self, value: Any, target: str) -> Any:
        """``value`` as this option's type (text as given on a command line is
        converted).

        Raises:
            InvalidInputError: a value that is not of the type.
        """
        if isinstance(value, str) and self.type is not str:
            try:
                value = {"true": True, "false": False}[value.lower()] if self.type is bool \
                    else self.type(value)
            except (KeyError, ValueError):
                raise InvalidInputError(f"Option {self.name}={value!r} of target {target!r} "
                                        f"must be a {self.type.__name__}.") from None
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise InvalidInputError(f"Option {self.name}={value!r} of target {target!r} must "
                                    f"be a {self.type.__name__}.")
        return value


class DeployTarget:
    """One place a model can be deployed to.

    Every target takes the common options of :meth:`deploy`; an option that does not
    apply to a target is ignored by it (``namespace``, ``storage_uri``,
    ``canary_percent``, ``endpoint``, ``kubeconfig``, ``client`` on ``local``; ``port``
    on cluster targets). Target-specific ``options`` are checked by the target.
    """

    name: str = ""
    #: whether the target renders manifests (what a dry run writes)
    renders_manifests: ClassVar[bool] = False
    #: whether a deployment lives on this machine and ``kfp-interop run --local`` stops it
    #: at the end of the run (unless ``--keep-serving``); cluster deployments stay
    stops_with_local_run: ClassVar[bool] = False

    def options(self) -> dict[str, TargetOption]:
        """The options this target takes beyond the common ones (none by default)."""
        return {}

    def layout(self, options: dict | None = None) -> str:
        """The storage layout (:data:`kfp_interop.storage.LAYOUTS`) the target reads the
        model from, given its options; ``""`` when it reads no storage."""
        return ""

    def check_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """``given`` checked against :meth:`options` and typed, before anything runs.

        Raises:
            InvalidInputError: an option this target does not take (the message lists
                the ones it takes), or a value of another type.
        """
        known = self.options()
        unknown = sorted(set(given) - set(known))
        if unknown:
            takes = (f"it takes {sorted(known)}" if known else
                     f"the {self.name!r} target runs a process here and takes none")
            raise InvalidInputError(f"Option(s) {unknown} do not apply to target "
                                    f"{self.name!r}: {takes}. Leave them out.")
        return {k: known[k].parse(v, self.name) for k, v in given.items()}

    def deploy(self, model: str, *, name: str = "", namespace: str = "default",
               storage_uri: str = "", canary_percent: int = 0, dry_run: bool = False,
               output_dir: str | None = None, timeout: float = 600.0, endpoint: str = "",
               port: int = 0, kubeconfig: str | None = None, client: Any = None,
               log: Callable[[str], None] = print, **options: Any) -> dict:
        """Deploy ``model`` (ONNX file or model folder with its record); return the
        deployment (a JSON-able dict with at least ``target``, ``name``,
        ``model_name``, ``endpoint``, ``dry_run``)."""
        raise NotImplementedError

    def undeploy(self, deployment: dict, *, client: Any = None) -> bool:
        """Stop what :meth:`deploy` started; ``False`` when nothing was running."""
        raise NotImplementedError

    def rollback(self, deployment: dict, *, client: Any = None) -> str:
        """Undo a deployment after a failed check; returns what was done."""
        return "nothing to roll back"

    def promote(self, deployment: dict, *, client: Any = None) -> dict:
        """Give a canary all the traffic (after its smoke test passed)."""
        return deployment

    def delete(self, name: str, namespace: str = "default", *, client: Any = None,
               kubeconfig: str | None = None) -> bool:
        """Delete a deployment by name; ``False`` when it did not exist."""
        raise UnsupportedOperationError(
            f"The {self.name!r} target cannot delete deployments by name.")

    def render(self, model: str | None = None, **options: Any) -> tuple[Any, dict]:
        """``(spec, manifest)`` for targets that render manifests."""
        raise UnsupportedOperationError(
            f"The {self.name!r} target renders no manifest (it has nothing to dry-run).")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


DEPLOY_TARGETS: Registry[DeployTarget] = Registry(
    "deploy target",
    "Add one with kfp_interop.deploy.register_target(instance) (docs/extending.md).",
    entry_point_group="kfp_interop.deploy_targets")
#: ``register_target(instance, replace=False)``: register a target under its ``name``.
register_target = DEPLOY_TARGETS.add
