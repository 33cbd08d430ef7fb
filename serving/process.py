"""Starting and stopping the BentoML server process for a workspace.

The service reads ``ECRM_WORKSPACE`` / ``ECRM_CONFIG`` from its environment, so the server started here
serves exactly this workspace. A background server's pid and log live in ``WS/state``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from configs.settings import Settings
from features.storage import Workspace
from serving.auth import load_api_keys

SERVICE = "serving.service:EcrmService"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def server_command(host: str, port: int) -> list[str]:
    """The ``bentoml serve`` command line for the ecrm service."""
    bentoml = Path(sys.executable).with_name("bentoml")
    return [str(bentoml), "serve", SERVICE, "--host", host, "--port", str(port), "--working-dir", str(PROJECT_ROOT)]


def server_env(ws: Workspace, auth: bool = True, config: Path | None = None,
               workers: int | None = None, reload_seconds: float | None = None) -> dict[str, str]:
    """Environment of the server process: the workspace, the config file when one was given, no telemetry;
    ``auth=False`` turns API keys off; ``workers`` replaces ``serving.workers`` and ``reload_seconds``
    ``serving.reload_seconds``."""
    env = dict(os.environ)
    env["ECRM_WORKSPACE"] = str(ws.root)
    if config is not None:
        env["ECRM_CONFIG"] = str(config)
    if not auth:
        env["ECRM_AUTH"] = "off"
    if workers is not None:
        env["ECRM_SERVER_WORKERS"] = str(int(workers))
    if reload_seconds is not None:
        env["ECRM_SERVER_RELOAD_SECONDS"] = repr(float(reload_seconds))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")  # one request = a few rows: OpenMP worker threads only add waiting
    return env


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def run_foreground(settings: Settings, ws: Workspace, port: int | None = None, host: str | None = None,
                   config: Path | None = None) -> int:
    """Run the server until interrupted; returns its exit code."""
    host = host or settings.serving.host
    port = port or settings.serving.port
    if port_in_use(host, port):
        raise ValueError(f"port {port} on {host} is already in use: choose another with --port")
    load_api_keys(settings)  # fail here, with the message, rather than in the server's log
    return subprocess.call(server_command(host, port), env=server_env(ws, config=config))


def _pid_file(ws: Workspace) -> Path:
    return ws.state_dir / "server.pid"


def stop_background(ws: Workspace, timeout: float = 15.0) -> bool:
    """Stop this workspace's background server and all its worker processes; True if one was stopped.

    BentoML's workers may leave the server's process group, so the whole process tree is collected
    first, asked to stop (SIGTERM), and killed if still alive after ``timeout`` seconds.
    """
    import psutil

    pid_file = _pid_file(ws)
    if not pid_file.is_file():
        return False
    try:
        pid = int(pid_file.read_text().split()[0])
        root = psutil.Process(pid)
        if SERVICE not in root.cmdline():  # a stale pid file whose pid now belongs to another program
            raise LookupError(pid)
        tree = [root, *root.children(recursive=True)]
    except (ValueError, IndexError, LookupError, psutil.Error):
        pid_file.unlink(missing_ok=True)
        return False
    terminate_tree(tree, timeout)
    pid_file.unlink(missing_ok=True)
    return True


def terminate_tree(procs: list, timeout: float = 10.0) -> None:
    """Terminate ``procs`` (``psutil.Process`` objects: a process and its descendants), then kill what is
    left after ``timeout`` seconds."""
    import psutil

    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def _poll(probe: Callable[[], bool], timeout: float, proc: subprocess.Popen | None, died: str) -> bool:
    """Call ``probe`` (HTTP errors count as not yet) every 0.3 s until it returns True (then True) or
    ``timeout`` passes (then False); RuntimeError ``died`` (with the exit code) if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(died.format(code=proc.returncode))
        try:
            if probe():
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def wait_ready(url: str, timeout: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url``/readyz answers 200; raise RuntimeError on timeout or if the process dies."""
    if not _poll(lambda: httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200, timeout, proc,
                 "the server exited with code {code} before it was ready"):
        raise RuntimeError(f"the server at {url} was not ready after {timeout:.0f}s")


def wait_serving(url: str, versions: dict[str, int], timeout: float = 90.0,
                 proc: subprocess.Popen | None = None, headers: dict[str, str] | None = None) -> None:
    """Wait until the server at ``url`` serves (``GET /model_info``) at least these model versions
    (``{"recommender": 3}``: the keys of ``/model_info``'s ``models``); raise RuntimeError on timeout
    or if the process dies."""
    serving: dict = {}

    def probe() -> bool:
        r = httpx.get(f"{url}/model_info", timeout=2.0, headers=headers)
        if r.status_code != 200:
            return False
        serving.clear()
        serving.update({k: int(v["version"]) for k, v in r.json().get("models", {}).items()})
        return all(serving.get(k) == int(v) for k, v in versions.items())

    if not _poll(probe, timeout, proc, "the server exited with code {code}"):
        raise RuntimeError(f"the server at {url} did not serve {versions} after {timeout:.0f}s (serving {serving})")


@dataclass
class BackgroundServer:
    """A server process started by :func:`launch_background`; :meth:`wait` blocks until it is ready."""

    url: str
    log: Path
    proc: subprocess.Popen
    ws: Workspace

    def wait(self, timeout: float = 90.0) -> None:
        """Wait for ``/readyz``; on failure stop the server and raise RuntimeError naming the log."""
        self._or_stop(lambda: wait_ready(self.url, timeout, self.proc))

    def wait_serving(self, versions: dict[str, int], timeout: float = 90.0) -> None:
        """Wait until it serves these model versions (:func:`wait_serving`); on failure stop the server and
        raise RuntimeError naming the log."""
        self._or_stop(lambda: wait_serving(self.url, versions, timeout, self.proc))

    def _or_stop(self, wait: Callable[[], None]) -> None:
        try:
            wait()
        except RuntimeError as exc:
            stop_background(self.ws)
            raise RuntimeError(f"{exc}; see {self.log}") from exc


def launch_background(settings: Settings, ws: Workspace, port: int | None = None,
                      host: str | None = None, auth: bool = True, config: Path | None = None,
                      workers: int | None = None, reload_seconds: float | None = None) -> BackgroundServer:
    """(Re)start this workspace's server detached, without waiting for it to be ready.

    ``auth=False`` serves without API keys, ``workers`` replaces ``serving.workers`` and ``reload_seconds``
    ``serving.reload_seconds`` (``ecrm demo``'s local server: one worker, started while the recommender
    still trains, which it loads as soon as it is registered)."""
    host = host or settings.serving.host
    if auth:
        load_api_keys(settings)  # fail here, with the message, rather than in the server's log
    port = port or settings.serving.port
    stop_background(ws)
    if port_in_use(host, port):
        raise ValueError(f"port {port} on {host} is already in use by another program: use --port")
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    log = ws.state_dir / "server.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(server_command(host, port), env=server_env(ws, auth, config, workers, reload_seconds),
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    _pid_file(ws).write_text(f"{proc.pid} {host}:{port}\n")
    return BackgroundServer(f"http://{host}:{port}", log, proc, ws)


def start_background(settings: Settings, ws: Workspace, port: int | None = None, host: str | None = None,
                     timeout: float = 90.0, auth: bool = True) -> tuple[str, Path]:
    """(Re)start this workspace's server detached; wait until ready. Returns its URL and log file."""
    server = launch_background(settings, ws, port, host, auth)
    server.wait(timeout)
    return server.url, server.log
