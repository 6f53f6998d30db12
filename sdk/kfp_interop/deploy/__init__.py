"""Deploy targets, one module each, in the :data:`DEPLOY_TARGETS` registry:

=========  ===========================================================================
target     what it deploys
=========  ===========================================================================
local      a detached local Open Inference Protocol server (:mod:`.local`)
kserve     a KServe ``InferenceService`` on the Triton runtime (:mod:`.kserve`)
seldon     a Seldon Core v1 ``SeldonDeployment`` (:mod:`.seldon`)
seldon-v2  a Seldon Core v2 ``Model`` (:mod:`.seldon_v2`)
=========  ===========================================================================

The Kubernetes targets share one flow (:mod:`.kubernetes`: render, validate, dry run,
apply, wait for Ready, confirm the model answers, roll back) through the official
``kubernetes`` client (:mod:`.kube`). Add a target with one module that calls
:func:`register_target` and one import below (``docs/extending.md``).
"""

from __future__ import annotations

from typing import Any

from kfp_interop.deploy.base import DEPLOY_TARGETS, DeployTarget, register_target
from kfp_interop.deploy.manifests import merge_patch
# built-in targets: importing a module registers it (kubernetes is imported on first use)
from kfp_interop.deploy import kserve, local, seldon, seldon_v2  # noqa: F401,E402

__all__ = ["DEPLOY_TARGETS", "DeployTarget", "register_target", "deploy", "undeploy",
           "rollback", "promote", "delete", "render_manifest", "validate_manifest",
           "merge_patch"]


def deploy(target: str, model: str, **options: Any) -> dict:
    """Deploy ``model`` (ONNX file or model folder) to ``target`` (see
    :meth:`DeployTarget.deploy` for the options)."""
    return DEPLOY_TARGETS.get(target).deploy(model, **options)


def undeploy(deployment: dict, *, client: Any = None) -> bool:
    """Stop what :func:`deploy` started (local: the server; Kubernetes: the object)."""
    return DEPLOY_TARGETS.get(deployment["target"]).undeploy(deployment, client=client)


def rollback(deployment: dict, *, client: Any = None) -> str:
    """Undo a deployment after a failed check; returns what was done."""
    return DEPLOY_TARGETS.get(deployment["target"]).rollback(deployment, client=client)


def promote(deployment: dict, *, client: Any = None) -> dict:
    """Give a canary all the traffic (after its smoke test passed)."""
    return DEPLOY_TARGETS.get(deployment["target"]).promote(deployment, client=client)


def delete(target: str, name: str, namespace: str = "default", *, client: Any = None,
           kubeconfig: str | None = None) -> bool:
    """Delete a deployment by name; ``False`` when it did not exist."""
    return DEPLOY_TARGETS.get(target).delete(name, namespace, client=client,
                                             kubeconfig=kubeconfig)


def render_manifest(target: str, model: str | None = None, **options: Any):
    """``(spec, manifest)`` of a target that renders manifests, validated."""
    return DEPLOY_TARGETS.get(target).render(model, **options)


def validate_manifest(manifest: dict, schema: dict | None = None) -> None:
    """Admission rules of the target whose kind ``manifest`` has, and the CRD schema.

    Raises:
        ManifestValidationError: listing the violation(s).
        UnknownNameError: no registered target renders this kind.
    """
    from kfp_interop.errors import UnknownNameError

    for _, target in DEPLOY_TARGETS.items():
        spec = getattr(target, "spec", None)
        if spec is not None and spec.resource.kind == manifest.get("kind"):
            return target.validate(manifest, schema)
    raise UnknownNameError(f"No deploy target renders kind {manifest.get('kind')!r}.")
