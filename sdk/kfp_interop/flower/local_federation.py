"""A federation on one machine (``kfp-interop federation up/down``): a SuperLink and N
SuperNodes as separate processes on 127.0.0.1, without TLS (or with a throwaway CA's,
``--tls``), each node with its own rows
in its own folder, the way a user tries the deployment engine before involving other
machines (and what the tests run).

``up`` splits a data set as the simulation does (the same train/test split, the same
IID or Dirichlet partition for the same seed), writes node ``i``'s rows to
``DIR/node-i/data.parquet`` (features and the target column with its original labels:
a file as a data owner would have it) and the held-out rows, the server's evaluation
set, to ``DIR/server/eval.parquet``; starts the SuperLink (its ServerApp writes to
``DIR/results``) and the nodes (node config ``data-path`` and ``partition-id``), waits
until every node is online, and records the processes in ``DIR/federation.json``.
``down`` stops them (all, or one node: how the tests make a node drop out).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Any

from kfp_interop.constants import DEFAULT_SEED, DEFAULT_TEST_SIZE
from kfp_interop.errors import FederationError, InvalidInputError
from kfp_interop.flower.deployment import (RESULTS_ENV, ResultsLocation, SuperLink,
                                           flower_environment, flower_executable, flwr_json)
from kfp_interop.serving.process import free_port, process_exited, stop_server

__all__ = ["up", "down", "STATE_FILE", "node_data_file"]

STATE_FILE = "federation.json"


def node_data_file(directory: str, node: int) -> str:
    return os.path.join(directory, f"node-{int(node)}", "data.parquet")


def _write_rows(data, rows, path: str) -> None:
    """The rows as a data owner's file: features, then the target with its labels."""
    import pandas as pd

    frame = pd.DataFrame(data.numeric()[rows], columns=data.feature_names)
    labels = [data.class_labels[i] for i in data.y[rows]]
    try:
        frame[data.target_name] = [int(v) for v in labels]
    except ValueError:
        frame[data.target_name] = labels
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frame.to_parquet(path, index=False)


def _make_tls(folder: str) -> dict:
    """A CA and a SuperLink certificate for 127.0.0.1/localhost signed by it (a test
    federation's TLS: the same code path as a real one, with a throwaway CA)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    from kfp_interop.files import atomic_write

    now = datetime.datetime.now(datetime.timezone.utc)
    life = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30))

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("kfp-interop federation CA"))
          .issuer_name(name("kfp-interop federation CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(life[0])
          .not_valid_after(life[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(life[0]).not_valid_after(life[1])
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(folder, exist_ok=True)
    paths = {k: os.path.join(folder, f) for k, f in (("ca", "ca.crt"), ("cert", "server.pem"),
                                                     ("key", "server.key"))}
    pem = serialization.Encoding.PEM
    atomic_write(paths["ca"], ca.public_bytes(pem))
    atomic_write(paths["cert"], cert.public_bytes(pem))
    atomic_write(paths["key"], key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    os.chmod(paths["key"], 0o600)
    return paths


def _start(argv: list[str], cwd: str, env: dict) -> int:
    os.makedirs(cwd, exist_ok=True)
    log = open(os.path.join(cwd, "log.txt"), "ab")
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return proc.pid


def _wait_port(port: int, pid: int, timeout: float, what: str, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_exited(pid):
            raise FederationError(f"The {what} exited while starting: see {log}.")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.3)
    raise FederationError(f"The {what} did not listen on 127.0.0.1:{port} within "
                          f"{timeout:g} s: see {log}.")


def _online(address: str, home: str, ca_pem: str = "") -> int:
    env = SuperLink(address, insecure=not ca_pem, ca_pem=ca_pem).environment(home)
    answer = flwr_json(["supernode", "list", "kfp"], env, timeout=60.0,
                        what="listing the SuperNodes")
    return sum(1 for n in answer.get("nodes", []) if str(n.get("status", "")).lower()
               == "online")


def up(directory: str, *, nodes: int, dataset: str = "digits", target_column: str = "",
       partition: str = "dirichlet", alpha: float = 1.0, seed: int = DEFAULT_SEED,
       test_size: float = DEFAULT_TEST_SIZE, tls: bool = False, results: str = "",
       timeout: float = 120.0) -> dict:
    """Start the federation (see the module). Returns what ``federation.json`` holds:
    ``superlink`` (the address for the pipeline's ``superlink`` parameter),
    ``results`` (its ``federation_results``), ``eval_data`` and ``target_column`` (its
    ``dataset`` and ``target_column``), and the processes. With ``tls``, a throwaway CA
    signs the SuperLink's certificate and the nodes check it (``ca_certificate``: what
    the pipeline's task needs as ``KFP_INTEROP_SUPERLINK_CA``). ``results``: where the
    ServerApp writes (default ``DIR/results``; a storage URI is written with this
    environment's credentials).

    Raises:
        InvalidInputError: fewer than one node; a federation already running in
            ``directory``; bad partition settings (as the simulation's split).
        FederationError: a process that does not start (its log named).
    """
    from kfp_interop.data import split_dataset
    from kfp_interop.federated.partition import partition as split
    from kfp_interop.storage.objects import load_source

    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise InvalidInputError(f"nodes={nodes!r} must be an integer of at least 1.")
    directory = os.path.abspath(directory)
    state_path = os.path.join(directory, STATE_FILE)
    if os.path.isfile(state_path):
        raise InvalidInputError(f"A federation is already up in {directory!r}: run "
                                f"kfp-interop federation down --dir {directory} first.")
    if "'" in directory:
        raise InvalidInputError(f"{directory!r}: a folder name with a quote cannot be "
                                "passed in a SuperNode's node config; choose another.")
    data = load_source(dataset, target_column=target_column or None)
    if data.task != "classification" or data.text_columns:
        raise InvalidInputError(f"{dataset!r}: a federation here trains classifiers on "
                                "numeric features.")
    train, test = split_dataset(data, test_size=test_size, seed=seed)
    parts = split(train.y, nodes, kind=partition, alpha=alpha, seed=seed)
    eval_path = os.path.join(directory, "server", "eval.parquet")
    _write_rows(test, slice(None), eval_path)
    for i, rows in enumerate(parts):
        _write_rows(train, rows, node_data_file(directory, i))
    if not results:
        results = os.path.join(directory, "results")
        os.makedirs(results, exist_ok=True)
    ResultsLocation(results)  # an absolute folder or a storage URI
    certs = _make_tls(os.path.join(directory, "tls")) if tls else None
    security = (["--ssl-ca-certfile", certs["ca"], "--ssl-certfile", certs["cert"],
                 "--ssl-keyfile", certs["key"]] if certs else ["--insecure"])
    node_security = ["--root-certificates", certs["ca"]] if certs else ["--insecure"]

    env = flower_environment({**os.environ, RESULTS_ENV: results})
    port = free_port()
    address = f"127.0.0.1:{port}"
    link_dir = os.path.join(directory, "superlink")
    state: dict[str, Any] = {"superlink": address, "results": results,
                             "eval_data": eval_path, "target_column": data.target_name,
                             "dataset": dataset, "partition": partition,
                             "alpha": float(alpha), "seed": seed, "nodes": [],
                             "tls": bool(certs),
                             "ca_certificate": certs["ca"] if certs else ""}
    state["superlink_pid"] = _start(
        [flower_executable("flower-superlink"), *security, "--host", "127.0.0.1", "--port", str(port),
         "--isolation", "subprocess", "--disable-runtime-dependency-installation",
         "--database", os.path.join(link_dir, "state.db")], link_dir, env)
    os.makedirs(directory, exist_ok=True)
    from kfp_interop.files import atomic_write_json

    atomic_write_json(state_path, state)  # from here on, down stops what started
    try:
        _wait_port(port, state["superlink_pid"], timeout, "SuperLink",
                   os.path.join(link_dir, "log.txt"))
        node_env = {k: v for k, v in env.items() if k != RESULTS_ENV}
        for i in range(nodes):
            node_dir = os.path.dirname(node_data_file(directory, i))
            config = (f"data-path='{node_data_file(directory, i)}' partition-id={i} "
                      f"target-column='{data.target_name}'")
            pid = _start([flower_executable("flower-supernode"), *node_security, "--superlink", address,
                          "--host", "127.0.0.1", "--port", str(free_port()),
                          "--isolation", "subprocess", "--node-config", config],
                         node_dir, node_env)
            state["nodes"].append({"node": i, "pid": pid, "data_path":
                                   node_data_file(directory, i), "rows": int(len(parts[i]))})
            atomic_write_json(state_path, state)
        deadline = time.monotonic() + timeout
        home = os.path.join(directory, "flwr-home")
        ca_pem = open(certs["ca"]).read() if certs else ""
        while (online := _online(address, home, ca_pem)) < nodes:
            if time.monotonic() > deadline:
                raise FederationError(f"{online} of {nodes} SuperNodes came online within "
                                      f"{timeout:g} s: see {directory}/node-*/log.txt.")
            time.sleep(1.0)
    except BaseException:
        down(directory)
        raise
    return state


def down(directory: str, *, node: int | None = None) -> list[str]:
    """Stop the federation in ``directory`` (or only SuperNode ``node``); returns what
    was stopped. The folders (rows, results, logs) stay.

    Raises:
        InvalidInputError: no federation there; no such node.
    """
    directory = os.path.abspath(directory)
    state_path = os.path.join(directory, STATE_FILE)
    try:
        with open(state_path) as f:
            state = json.load(f)
    except FileNotFoundError:
        raise InvalidInputError(f"No federation is up in {directory!r} (no {STATE_FILE}).")
    stopped = []
    if node is not None:
        match = [n for n in state["nodes"] if n["node"] == node]
        if not match:
            raise InvalidInputError(f"The federation in {directory!r} has no node {node}; "
                                    f"it has {[n['node'] for n in state['nodes']]}.")
        stop_server(match[0]["pid"], process_group=True)
        return [f"node-{node}"]
    for n in state["nodes"]:
        stop_server(n["pid"], process_group=True)
        stopped.append(f"node-{n['node']}")
    stop_server(state["superlink_pid"], process_group=True)
    stopped.append("superlink")
    os.remove(state_path)
    return stopped
