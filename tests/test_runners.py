"""The analysis off the DirectRunner: Beam's portable runner, with workers in their own processes.

This is the protocol the Flink and Spark runners speak (a job service, an SDK
worker pool reached over gRPC), so what breaks when the pipeline leaves the
DirectRunner (pickling, staging, imports in the workers) breaks here too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"service on port {port} exited with {process.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


@pytest.fixture
def portable_runner():
    """Beam's local job service and an EXTERNAL worker pool, started and stopped here."""
    # The pool starts each worker with the `python` first on PATH: make it this one.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    job_port, pool_port = _free_port(), _free_port()
    services = [
        subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(job_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port", str(pool_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        _wait_for_port(job_port, services[0])
        _wait_for_port(pool_port, services[1])
        yield [
            "--runner=PortableRunner",
            f"--job_endpoint=localhost:{job_port}",
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{pool_port}",
        ]
    finally:
        for service in services:
            service.kill()
            service.wait()


@pytest.mark.slow
def test_portable_runner_with_external_workers_gives_the_direct_runners_numbers(portable_runner, run_copy, tiny_run):
    from analysis.__main__ import main as analysis_main

    args = ["--run-dir", str(run_copy), "--baseline", "epochs-1", "--candidate", "epochs-2", "--force", "-q"]
    assert analysis_main([*args, "--", *portable_runner]) == 0
    portable = json.loads((run_copy / "analysis" / "summary.json").read_text())
    direct = json.loads((tiny_run / "analysis" / "summary.json").read_text())
    for role in ("baseline", "candidate"):
        for sid, values in direct["models"][role].items():
            assert portable["models"][role][sid]["accuracy"] == values["accuracy"]
            assert portable["models"][role][sid]["examples"] == values["examples"]
    assert portable["paired"] == direct["paired"] and portable["deltas"] == direct["deltas"]
    assert portable["confusion_matrices"] == direct["confusion_matrices"]
    assert portable["runner"] == "PortableRunner"
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["stages"]["analysis"]["runner"] == "PortableRunner"
