"""Real local servers for the tests in this folder: Redis, PostgreSQL and a Spark check.

Each starts on 127.0.0.1 on a free port, in its own temporary folder, and is stopped (by the process it
started) afterwards. A missing binary gives a skip with the reason instead of a failure.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.shop import free_port


def require_binaries(*names: str) -> None:
    """Skip the calling test unless every program in ``names`` is on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH (install: see README 'Real servers')")


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server."""

    port: int
    proc: subprocess.Popen

    @property
    def connection_string(self) -> str:
        """Feast's connection string for it."""
        return f"127.0.0.1:{self.port},db=0"

    def ping(self) -> bool:
        """True when the server answers PING."""
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False


def start_redis(port: int | None = None, timeout: float = 20.0) -> RedisServer:
    """Start redis-server on loopback without persistence; wait until it answers."""
    require_binaries("redis-server")
    port = port or free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    server = RedisServer(port, proc)
    deadline = time.monotonic() + timeout
    while not server.ping():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"redis-server on port {port} did not start (exit code {proc.returncode})")
        time.sleep(0.1)
    return server


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate a process this module started, kill it if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for the duration of the block."""
    server = start_redis()
    try:
        yield server
    finally:
        stop_process(server.proc)


def _postgres_runner() -> list[str]:
    """Prefix that runs PostgreSQL's programs: none, or ``runuser -u postgres --`` when we are root
    (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run initdb/pg_ctl as")
    require_binaries("runuser")
    return ["runuser", "-u", "postgres", "--"]


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL cluster with trust authentication on loopback."""

    port: int
    data_dir: Path
    user: str = "ecrm"

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        """CREATE DATABASE ``name``."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def postgres_server(timeout: int = 60) -> Iterator[PostgresServer]:
    """``initdb`` a cluster in a temporary folder, start it with ``pg_ctl`` on a free loopback port,
    stop it and delete the folder afterwards."""
    require_binaries("initdb", "pg_ctl")
    runner = _postgres_runner()
    root = Path(tempfile.mkdtemp(prefix="ecrm-pg-"))
    data, log = root / "data", root / "server.log"
    if runner:
        shutil.chown(root, user="postgres")
    port = free_port()
    try:
        subprocess.run([*runner, "initdb", "-D", str(data), "-U", "ecrm", "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--no-instructions"], check=True, capture_output=True, timeout=timeout)
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
        started = subprocess.run([*runner, "pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w",
                                  "-t", str(timeout), "start"], capture_output=True, text=True, timeout=timeout + 10)
        if started.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {started.stderr or started.stdout}; "
                               f"{log.read_text() if log.is_file() else ''}")
        try:
            yield PostgresServer(port, data)
        finally:
            subprocess.run([*runner, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=timeout)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def require_spark() -> None:
    """Skip unless local Spark can run: java on PATH and pyspark installed (the ``spark`` extra)."""
    require_binaries("java")
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark not installed: `make install-spark` (see README 'Real servers')")


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, timeout: float = 120.0) -> Iterator[str]:
    """An MLflow tracking server (one worker) on a free loopback port over ``backend_uri``, storing model
    files in ``artifacts``; yields its http URL."""
    import sys

    import httpx

    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", backend_uri, "--artifacts-destination", artifacts.as_uri(),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server on port {port} did not start (exit code {proc.returncode})")
            time.sleep(0.3)
        yield url
    finally:
        stop_process(proc)
