"""Running a reference pipeline: on this machine through ``kfp.local`` (the
SubprocessRunner, in this environment; or the DockerRunner, every task in the image
the compiled YAML names, see :mod:`kfp_interop.cli.containers`), or on a cluster through
``kfp.Client`` (:func:`submit`). The one library module that imports kfp.

Embedded defaults make a run self-contained: with no S3 or MLflow configured, the model
repository is a folder and the MLflow store a SQLite file, both in the output folder.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
import time
import warnings
from typing import Any

from kfp_interop.cli.summary import build_summary
from kfp_interop.files import atomic_write_json
from kfp_interop.redaction import redact, redact_all

__all__ = ["run_local", "submit", "resolve_token", "FINAL_STATES"]


class _Progress:
    """stdout stand-in during a local run: everything goes to the run log; task and
    pipeline status lines also go to the terminal (all of it with --verbose). Whole lines
    are passed on, with the user info of any URI redacted (kfp.local prints every task's
    parameters, and a tracking URI may carry credentials)."""

    KEYS = ("Executing task", "finished with status", "Pipeline '", "Pipeline \x1b")

    def __init__(self, log, terminal, verbose: bool):
        self.log, self.terminal, self.verbose = log, terminal, verbose
        self._buf = ""

    def _line(self, line: str) -> None:
        line = redact(line)
        self.log.write(line)
        if self.verbose or (any(k in line for k in self.KEYS) and not line.startswith(" ")):
            self.terminal.write(line)

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self._line(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def close(self) -> None:
        if self._buf:
            self._line(self._buf)
            self._buf = ""
        self.flush()

    def isatty(self) -> bool:
        return False


def _local_stores(params: dict[str, Any], accepted, out_dir: str) -> dict[str, Any]:
    """Embedded defaults: with no S3 or MLflow configured, a local model repository and a
    local MLflow store (SQLite; MLflow 3 refuses its plain file store) in out_dir."""
    if "storage_uri" in accepted and "storage_uri" not in params:
        params = {**params, "storage_uri": os.path.join(out_dir, "model-repository")}
    if "tracking_uri" in accepted and not params.get("tracking_uri") and \
            not os.environ.get("MLFLOW_TRACKING_URI"):
        params = {**params, "tracking_uri": "sqlite:///" + os.path.join(out_dir, "mlflow.db")}
    return params


#: kfp.local runners by name (``kfp-interop run --runner``)
RUNNERS = ("subprocess", "docker")


class _DockerTasks:
    """While a run lasts: kfp.local's DockerRunner starts each task through
    :func:`kfp_interop.cli.containers.run_task` (see there why), in ``image``, with the
    host's S3/MLflow settings, the output folder and any file named by a parameter
    mounted at their own paths, and host networking (servers on 127.0.0.1 stay
    reachable). The image's user (uid 1000) must write the output folder: as root it is
    handed to that user for the run and back to its owner after; another user runs the
    tasks as itself."""

    def __init__(self, out_dir: str, params: dict[str, Any], image: str):
        from kfp_interop._version import __version__
        from kfp_interop.cli import containers
        from kfp_interop.pipelines import image_reference

        self.out_dir = out_dir
        self.owner = os.stat(out_dir)
        self.image = image_reference(image)
        self.client = containers.engine()
        try:
            containers.check_image(self.client, self.image, __version__)
        except BaseException:
            self.client.close()
            raise
        self.volumes = {out_dir: {"bind": out_dir, "mode": "rw"}}
        for value in params.values():  # data files named by a parameter, read-only
            if isinstance(value, str) and containers.mountable(value) \
                    and not value.startswith(out_dir + os.sep):
                self.volumes[value] = {"bind": value, "mode": "ro"}
        self.env = containers.task_environment()
        self.run_args: dict[str, Any] = {"network_mode": "host"}
        uid = os.geteuid()
        if uid not in (0, containers.IMAGE_USER[0]):
            self.run_args["user"] = f"{uid}:{os.getegid()}"
            self.env["HOME"] = "/tmp"

    def _chown(self, uid: int, gid: int) -> None:
        for root, dirs, files in os.walk(self.out_dir):
            for n in [root] + [os.path.join(root, f) for f in dirs + files]:
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(n, uid, gid)

    def __enter__(self):
        from kfp.local import docker_task_handler

        from kfp_interop.cli import containers
        from kfp_interop.components._common import IMAGE

        if os.geteuid() == 0:
            self._chown(*containers.IMAGE_USER)

        def task(client, image, command, volumes, **run_args):
            if image.split("@")[0] == IMAGE:
                image = self.image
            return containers.run_task(self.client, image, command, volumes,
                                       base_environment=self.env,
                                       extra_volumes=self.volumes,
                                       **{**run_args, **self.run_args})

        self._saved = docker_task_handler.run_docker_container
        docker_task_handler.run_docker_container = task
        return self

    def __exit__(self, *exc):
        from kfp.local import docker_task_handler

        docker_task_handler.run_docker_container = self._saved
        if os.geteuid() == 0:  # back to the folder's owner
            self._chown(self.owner.st_uid, self.owner.st_gid)
        self.client.close()
        return False


def run_local(name: str, params: dict[str, Any], out_dir: str, *, keep_serving: bool = False,
              verbose: bool = False, profile: str = "local",
              graph: dict | None = None, runner: str = "subprocess",
              image: str = "") -> dict[str, Any]:
    """Run a reference pipeline through kfp.local and write ``out_dir/summary.json``.
    Returns the summary.

    ``runner="subprocess"`` runs each task in this environment; ``"docker"`` runs each
    in its own container of ``image`` (default: the one the compiled YAML names), as the
    image's user, with the command KFP would run, against Docker or podman's
    Docker-compatible socket (``$DOCKER_HOST``). ``profile="cluster"`` runs it with the
    defaults its compiled YAML has (nothing stored or registered unless given): a
    rehearsal of a run started in the Kubeflow UI.

    Raises:
        UnknownNameError: unknown pipeline, profile or runner.
        ContainerEngineError / ContainerImageError: (docker) no engine answers; the
            image is missing or carries another version.
    """
    from kfp import local

    from kfp_interop.deploy import DEPLOY_TARGETS, undeploy
    from kfp_interop.errors import UnknownNameError
    from kfp_interop.pipelines import load
    from kfp_interop.pipelines.common import PROFILES

    if profile not in PROFILES:
        raise UnknownNameError(f"Unknown profile {profile!r}; use one of {sorted(PROFILES)}.")
    if runner not in RUNNERS:
        raise UnknownNameError(f"Unknown runner {runner!r}; use one of {list(RUNNERS)}.")
    func = load(name, graph)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    accepted = inspect.signature(getattr(func, "pipeline_func", func)).parameters
    params = {**{k: v for k, v in PROFILES[profile].items() if k in accepted}, **params}
    if profile == "local":
        params = _local_stores(params, accepted, out_dir)
    for stale in ("summary.json", "model.onnx", "model.metadata.json"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    runs_root = os.path.join(out_dir, "runs")
    os.makedirs(runs_root, exist_ok=True)
    before = set(os.listdir(runs_root))
    log_path = os.path.join(out_dir, "run.log")
    in_containers = _DockerTasks(out_dir, params, image) if runner == "docker" else None
    local.init(runner=local.DockerRunner() if in_containers else
               local.SubprocessRunner(use_venv=False), pipeline_root=runs_root,
               raise_on_error=True)
    how = f"in containers of {in_containers.image}" if in_containers else "locally"
    print(f"Running pipeline {name!r} {how} (log: {log_path})")
    start = time.monotonic()
    status, failure = "succeeded", ""
    real_stdout = sys.stdout
    with open(log_path, "w") as log, warnings.catch_warnings(), \
            (in_containers or contextlib.nullcontext()):
        # kfp.local warns that our image is not a plain Python image and that display
        # names have no local effect: both expected with the SubprocessRunner.
        warnings.filterwarnings("ignore", module=r"kfp\.local")
        sys.stdout = _Progress(log, real_stdout, verbose)
        try:
            func(**params)
        except Exception as e:  # noqa: BLE001 - kfp.local raises RuntimeError on failure
            status = "failed"
            failure = str(e)
            log.write(redact(f"\n{type(e).__name__}: {e}\n"))
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
    seconds = time.monotonic() - start
    new = sorted(set(os.listdir(runs_root)) - before)
    run_dir = os.path.join(runs_root, new[-1]) if new else None
    summary = build_summary(name, run_dir, out_dir, status, params, seconds, log_path)
    if status == "failed" and not summary.get("failed_task"):
        # the run failed before any task wrote its folder: kfp.local names the task
        match = re.search(r"Inner task failed: '([^']+)'", re.sub(r"\x1b\[[0-9;]*m", "",
                                                                    failure))
        if match:
            summary["failed_task"] = match.group(1)
    if status == "failed" and not summary.get("error"):
        from kfp_interop.cli.summary import failure_reason

        summary["error"] = failure_reason(log_path)
    summary = redact_all(summary)  # no credentials from a URI parameter in the summary
    dep = summary.get("deployment")
    if dep and not DEPLOY_TARGETS.get(dep["target"]).stops_with_local_run:
        dep = None  # a cluster deployment stays: that is what it is for
    if dep and not keep_serving:
        undeploy(dep)
        summary["server_stopped"] = True
    elif dep:
        summary["server_stopped"] = False
    atomic_write_json(os.path.join(out_dir, "summary.json"), summary, sort_keys=False,
                      default=str)
    return summary


# -- submitting to a Kubeflow Pipelines cluster (kfp.Client) ---------------------------

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
