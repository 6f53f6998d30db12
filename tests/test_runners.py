"""`kfp-interop run --runner docker` without containers: what reaches a task's
container (mounts, environment), how a local deployment serves there, and the typed
errors before any task when no engine answers. The runs themselves are in
tests/test_images.py (CI's container stage)."""

import pytest
from test_pipeline import run_cli

from kfp_interop.runs.containers import mountable, task_environment


@pytest.mark.parametrize("path,ok", [
    ("/", False), ("/opt", False), ("/usr", False), ("/usr/lib", False),
    ("/etc/passwd", False), ("/tmp", False), ("/home", False), ("/proc/self", False),
    ("relative.csv", False), ("/nonexistent/rows.csv", False),
])
def test_a_parameter_never_mounts_over_the_images_own_folders(path, ok):
    assert mountable(path) is ok


def test_a_data_file_a_parameter_names_is_mounted(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    assert mountable(str(rows)) and mountable(str(tmp_path))


def test_a_task_gets_the_stores_settings_and_nothing_else():
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "S3_ENDPOINT": "http://x",
           "MLFLOW_TRACKING_URI": "http://m", "KFP_INTEROP_ALLOWED_MODULES": "m",
           "KERAS_BACKEND": "torch", "HOME": "/root", "PATH": "/usr/bin",
           "GITHUB_TOKEN": "t", "KUBECONFIG": "/root/.kube/config"}
    got = task_environment(env)
    assert got == {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                   "S3_ENDPOINT": "http://x", "MLFLOW_TRACKING_URI": "http://m",
                   "KFP_INTEROP_ALLOWED_MODULES": "m", "KERAS_BACKEND": "torch",
                   "KFP_INTEROP_TASK_CONTAINER": "1"}


def test_a_local_deployment_in_a_task_container_serves_in_the_smoke_test(monkeypatch,
                                                                       iris_onnx):
    from kfp_interop.deploy import DEPLOY_TARGETS
    from kfp_interop.deploy.local import IN_TASK

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KFP_INTEROP_TASK_CONTAINER", "1")
    dep = DEPLOY_TARGETS.get("local").deploy(iris_onnx, log=lambda _: None)
    assert dep["mode"] == IN_TASK and dep["endpoint"] is None and "pid" not in dep


def test_options_that_do_not_fit_the_runner(tmp_path):
    proc = run_cli("run", "tabular", "--local", "--runner", "docker", "--keep-serving",
                   "--output-dir", str(tmp_path))
    assert proc.returncode == 2 and "--keep-serving needs --runner subprocess" in proc.stderr
    proc = run_cli("run", "tabular", "--local", "--image", "registry.example.com/k:1",
                   "--output-dir", str(tmp_path))
    assert proc.returncode == 2 and "--image names the tasks' image for --runner docker" \
        in proc.stderr


def test_no_engine_and_a_socket_that_does_not_answer(tmp_path):
    sock = tmp_path / "dead.sock"
    import socket

    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(sock))  # bound, never listening: connections are refused
    for host in ("unix:///nonexistent/docker.sock", f"unix://{sock}"):
        proc = run_cli("run", "tabular", "--local", "--runner", "docker", "--output-dir",
                       str(tmp_path / "out"), env={"DOCKER_HOST": host})
        assert proc.returncode == 2
        text = proc.stdout + proc.stderr
        assert "No container engine answers at " + host in text, text
        assert "scripts/containers.sh" in text and "Traceback" not in text, text
    dead.close()
