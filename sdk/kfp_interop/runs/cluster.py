"""Running a reference pipeline on a Kubeflow Pipelines cluster through ``kfp.Client``:
compile, start, follow. With :mod:`kfp_interop.runs.local`, one of the two library
modules that import kfp.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

__all__ = ["submit", "resolve_token", "FINAL_STATES", "TOKEN_PATH_ENV"]


#: where KFP's own tooling finds a service-account token file
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
#: run states after which nothing changes
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")


def resolve_token(token_file: str = "", *, kubeconfig: str = "") -> tuple[str | None, str]:
    """A bearer token and where it came from, read from files only (a token given as an
    argument would land in shell history and process lists): ``token_file``, else the
    file ``$KF_PIPELINES_SA_TOKEN_PATH`` names, else the current kube config user's
    ``token``/``tokenFile``; ``(None, "none")`` when there is none.

    Raises:
        InvalidInputError: a named token file that cannot be read or is empty.
    """
    import yaml

    from kfp_interop.errors import InvalidInputError

    def read(path: str, what: str) -> str:
        try:
            with open(os.path.expanduser(path)) as f:
                token = f.read().strip()
        except OSError as e:
            raise InvalidInputError(f"Cannot read the token file {path!r} ({what}): "
                                    f"{e.strerror}.") from e
        if not token:
            raise InvalidInputError(f"The token file {path!r} ({what}) is empty.")
        return token

    if token_file:
        return read(token_file, "--token-file"), "--token-file"
    if os.environ.get(TOKEN_PATH_ENV):
        return read(os.environ[TOKEN_PATH_ENV], f"${TOKEN_PATH_ENV}"), f"${TOKEN_PATH_ENV}"
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or \
        os.path.expanduser("~/.kube/config")
    try:
        with open(path) as f:
            config = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):
        return None, "none"
    context = next((c.get("context") or {} for c in config.get("contexts") or []
                    if c.get("name") == config.get("current-context")), {})
    user = next((u.get("user") or {} for u in config.get("users") or []
                 if u.get("name") == context.get("user")), {})
    if user.get("token"):
        return str(user["token"]), "kube config"
    if user.get("tokenFile"):
        return read(user["tokenFile"], "kube config tokenFile"), "kube config"
    return None, "none"


def _api_call(what: str, host: str, call, *args, **kwargs):
    """``call(...)``, with the API's failures as typed errors naming ``what``."""
    import kfp_server_api
    import urllib3

    from kfp_interop.errors import (PipelinesAPIError, PipelinesAuthError,
                                    PipelinesUnavailableError)

    try:
        return call(*args, **kwargs)
    except kfp_server_api.ApiException as e:
        if e.status in (401, 403):
            raise PipelinesAuthError(
                f"Kubeflow Pipelines at {host} refused the credentials ({e.status} "
                f"{e.reason}) while {what}: give a token with --token-file or "
                f"${TOKEN_PATH_ENV}, or a kube config whose user has one.", e.status) from e
        if not e.status:
            raise PipelinesUnavailableError(f"Kubeflow Pipelines at {host} cannot be reached "
                                            f"while {what}: {e.reason}.") from e
        body = (e.body or "")[:300] if isinstance(e.body, str) else ""
        raise PipelinesAPIError(f"Kubeflow Pipelines at {host} answered {e.status} "
                                f"{e.reason} while {what}: {body}", e.status) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise PipelinesUnavailableError(f"Kubeflow Pipelines at {host} cannot be reached "
                                        f"while {what}: {type(e).__name__}.") from e


def _probe(host: str, token: str | None, timeout: float = 10.0) -> None:
    """One GET of the API's healthz, so that an unreachable host or refused credentials
    fail at once and by name (``kfp.Client`` retries healthz for 25 s, and reports a
    401 as a timeout)."""
    import urllib.error
    import urllib.request

    from kfp_interop.errors import (PipelinesAPIError, PipelinesAuthError,
                                    PipelinesUnavailableError)

    request = urllib.request.Request(f"{host}/apis/v2beta1/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise PipelinesAuthError(
                f"Kubeflow Pipelines at {host} refused the credentials ({e.code} "
                f"{e.reason}): give a token with --token-file or ${TOKEN_PATH_ENV}, or a "
                "kube config whose user has one.", e.code) from e
        raise PipelinesAPIError(f"{host} answered {e.code} {e.reason} to "
                                "/apis/v2beta1/healthz: is it the Kubeflow Pipelines API "
                                "(v2)?", e.code) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise PipelinesUnavailableError(f"Kubeflow Pipelines at {host} cannot be reached: "
                                        f"{reason}.") from e


def _experiment(client, name: str, namespace: str | None, host: str, *, create: bool):
    """The experiment called ``name``; created when ``create`` (the default experiment),
    else it must exist."""
    import json as _json

    from kfp_interop.errors import UnknownNameError

    flt = _json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name",
                                       "stringValue": name}]})
    found = _api_call(f"looking up experiment {name!r}", host,
                      client._experiment_api.experiment_service_list_experiments,
                      filter=flt, namespace=namespace, page_size=2)
    if found.experiments:
        return found.experiments[0]
    if not create:
        raise UnknownNameError(f"Experiment {name!r} does not exist at {host}: create it in "
                               "the Kubeflow UI, or leave --experiment out (runs then go to "
                               "'kfp-interop', created when missing).")
    import kfp_server_api

    return _api_call(f"creating experiment {name!r}", host,
                     client._experiment_api.experiment_service_create_experiment,
                     experiment=kfp_server_api.V2beta1Experiment(display_name=name,
                                                                 namespace=namespace))


def _task_states(run) -> dict[str, str]:
    details = getattr(run, "run_details", None)
    tasks = getattr(details, "task_details", None) or []
    return {t.display_name or t.task_id: t.state or "PENDING" for t in tasks}


def submit(name: str, params: dict[str, Any], *, host: str, namespace: str = "",
           experiment: str = "", run_name: str = "", token_file: str = "",
           profile: str = "cluster", image: str = "", compute=None,
           graph: dict | None = None, wait: bool = False,
           timeout: float = 6 * 3600, poll: float = 5.0,
           log=print) -> dict[str, Any]:
    """Compile a reference pipeline (or ``path/file.py:function``) with ``profile`` and
    ``image`` and start a run through ``kfp.Client`` at ``host``; with ``wait``, follow
    it to its end, logging each task's state as it changes.

    Returns:
        ``{"run_id", "url", "experiment_id", "state", "tasks"}``.

    Raises:
        PipelinesUnavailableError / PipelinesAuthError / PipelinesAPIError: the API
            cannot be reached, refuses the credentials, or refuses the request.
        UnknownNameError: a named experiment that does not exist.
        PipelineRunError: with ``wait``, a run that ended other than succeeded.
    """
    import tempfile

    from kfp_interop.errors import PipelineRunError
    from kfp_interop.pipelines import compile_pipeline

    from kfp_interop.errors import InvalidInputError

    if not host.startswith(("http://", "https://")):
        raise InvalidInputError(f"--host {host!r} must be an http:// or https:// URL of the "
                                "Kubeflow Pipelines API.")
    token, source = resolve_token(token_file)
    host = host.rstrip("/")
    _probe(host, token)
    with tempfile.TemporaryDirectory(prefix="kfp-interop-submit-") as tmp:
        package = compile_pipeline(name, os.path.join(tmp, "pipeline.yaml"), profile=profile,
                                   image=image, compute=compute, graph=graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kfp.Client warns about API versions
            from kfp import Client

            client = Client(host=host, namespace=namespace or "kubeflow", existing_token=token)
        ns = namespace or None
        exp = _experiment(client, experiment or "kfp-interop", ns, host,
                          create=not experiment)
        run_name = run_name or f"{os.path.basename(name.split(':')[-1])} " + time.strftime(
            "%Y-%m-%d %H:%M:%S")
        run = _api_call("creating the run", host, client.run_pipeline,
                        experiment_id=exp.experiment_id, job_name=run_name,
                        pipeline_package_path=package, params=params)
    url = f"{host}/#/runs/details/{run.run_id}"
    how = "without credentials" if source == "none" else f"with the token from {source}"
    log(f"Run {run_name!r} started ({how}): {url}")
    result = {"run_id": run.run_id, "url": url, "experiment_id": exp.experiment_id,
              "state": run.state or "PENDING", "tasks": {}}
    if not wait:
        return result
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        current = _api_call("following the run", host, client.get_run, run.run_id)
        for task, state in sorted(_task_states(current).items()):
            if seen.get(task) != state:
                log(f"  {task:<28} {state}")
                seen[task] = state
        state = (current.state or "PENDING").upper()
        result.update(state=state, tasks=dict(seen))
        if state in FINAL_STATES:
            break
        if time.monotonic() > deadline:
            raise PipelineRunError(f"Run {run.run_id} is still {state} after {timeout:.0f} s: "
                                   f"{url}", result)
        time.sleep(poll)
    log(f"Run {run.run_id} {state}: {url}")
    if state != "SUCCEEDED":
        error = getattr(current, "error", None)
        reason = getattr(error, "message", None) if error else None
        failed = [t for t, s in seen.items() if s == "FAILED"]
        raise PipelineRunError(f"Run {run.run_id} ended {state}" + (
            f" (failed task(s): {', '.join(failed)})" if failed else "") + (
            f": {reason}" if reason else "") + f". {url}", result)
    return result
