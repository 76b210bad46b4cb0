"""Read ``docker-compose.yml`` as compose does, and run its HMS services as local processes.

Docker cannot run on these machines, so the tests play compose: the YAML is read with PyYAML
(merge keys included), every value is interpolated the way compose does it (``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``,
``$VAR``, ``$$`` for a literal ``$``), and a service's ``command`` runs as a process with its
``environment``.  What a container would provide is mapped, and only that:

* the hosts ``redis`` and ``postgres`` → the test's Redis database and PostgreSQL database;
* "every interface" (``0.0.0.0``) inside a container → loopback here, and the ports the file
  gives HMS_METRICS_PORT / HMS_FLOWER_PORT → free local ports;
* the image's ``/app`` → this checkout, the executables ``hms``/``celery`` → this venv's;
* a container's private filesystem → a data directory and ``/tmp`` per service.

:class:`Service` plays a ``restart:`` policy: a process that exits is started again (new
process group), unless the test stopped it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
PROMETHEUS_FILE = REPO / "config" / "prometheus" / "prometheus.yml"
IMAGE_WORKDIR = "/app"
#: Services whose role the machine's own services take in the process test.
INFRASTRUCTURE = ("redis", "postgres", "prometheus", "grafana")
PORT_SETTINGS = ("HMS_METRICS_PORT", "HMS_FLOWER_PORT")
ADDRESS_SETTINGS = ("HMS_METRICS_ADDRESS", "HMS_FLOWER_ADDRESS")


class InterpolationError(ValueError):
    """A required variable is missing (compose refuses to start), or a malformed ``${…}``."""


_DOLLAR = re.compile(  # ${…} may hold one nested ${…} (a default from another variable)
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>(?:[^{}]|\{[^{}]*\})*)\}|(?P<plain>[A-Za-z_]\w*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str], where: str = "") -> str:
    """``text`` with compose's variable substitution applied from ``env``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("plain"):
            return env.get(match.group("plain"), "")
        expr = match.group("braced")
        parsed = _BRACED.fullmatch(expr)
        if parsed is None:
            raise InterpolationError(f"{where}: invalid interpolation ${{{expr}}}")
        name, op, arg = parsed.group("name"), parsed.group("op"), parsed.group("arg") or ""
        value = env.get(name)
        unset_or_empty = not value
        missing = unset_or_empty if op and op.startswith(":") else value is None
        if op is None:
            return value or ""
        if op in (":-", "-"):
            return interpolate(arg, env, where) if missing else (value or "")
        if op in (":?", "?"):
            if missing:
                raise InterpolationError(f"{where}: required variable {name} is missing: {arg}")
            return value or ""
        return "" if missing else interpolate(arg, env, where)  # :+ and +

    return _DOLLAR.sub(substitute, text)


def _interpolate_tree(node: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [_interpolate_tree(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, f"{where}.{k}") for k, v in node.items()}
    return node


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as YAML (anchors and ``<<`` merges resolved), not interpolated."""
    return yaml.safe_load(path.read_text())


def load(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as compose sees it with the variables ``env``."""
    raw = load_raw(path)
    return _interpolate_tree(raw, env, path.name)


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` (mapping or ``KEY=VALUE`` list) as strings."""
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in value)
    return {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in value.items()}  # fmt: skip


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return ["sh", "-c", command]
    return [str(part) for part in command or []]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Localizer:
    """Maps a service's container view (hosts, ports, paths) to this machine."""

    redis_url: str
    database_url: str
    root: Path
    ports: dict[str, int] = field(default_factory=dict)  # container port → local port

    def local_port(self, container_port: str) -> int:
        if container_port not in self.ports:
            self.ports[container_port] = free_port()
        return self.ports[container_port]

    def environment(self, name: str, service: dict[str, Any]) -> dict[str, str]:
        env = {}
        for key, value in environment_of(service).items():
            if "://" in value:
                host = urlsplit(value).hostname
                value = {"redis": self.redis_url, "postgres": self.database_url}.get(
                    host or "", value
                )
            if key in ADDRESS_SETTINGS and value in ("0.0.0.0", "::"):
                value = "127.0.0.1"
            if key in PORT_SETTINGS:
                value = str(self.local_port(value))
            env[key] = value
        data = self.root / name
        (data / "tmp").mkdir(parents=True, exist_ok=True)
        return {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "LANG": "C.UTF-8",
            "HOME": str(data),
            "TMPDIR": str(data / "tmp"),
            "HMS_DATA_DIR": str(data / "var"),  # the image's /app/var
            **env,
        }

    def command(self, name: str, service: dict[str, Any]) -> list[str]:
        argv = command_of(service)
        assert argv, f"service {name} has no command"
        head = {"hms": [str(Path(sys.executable).with_name("hms"))],
                "celery": [sys.executable, "-m", "celery"]}.get(argv[0], [argv[0]])  # fmt: skip
        tmp = str(self.root / name / "tmp")
        rest = [
            part.replace("/tmp/", tmp + "/").replace(IMAGE_WORKDIR + "/", str(REPO) + "/")
            for part in argv[1:]
        ]
        return [*head, *rest]


class Service:
    """One compose service as a local process group, restarted like ``restart:`` does."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.pgids: list[int] = []
        self._stopping = threading.Event()
        # Cleared: an exited service waits before its restart (a restart delay); set again
        # to let it restart.
        self.restart_allowed = threading.Event()
        self.restart_allowed.set()
        self._restarted = threading.Condition()
        self._watcher: threading.Thread | None = None

    def start(self, *, restart: bool) -> Service:
        self._spawn()
        if restart:
            self._watcher = threading.Thread(target=self._watch, name=self.name, daemon=True)
            self._watcher.start()
        return self

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,  # the image's WORKDIR
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group per container
            )
        self.pgids.append(self.process.pid)
        with self._restarted:
            self.starts += 1
            self._restarted.notify_all()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            assert self.process is not None
            self.process.wait()  # the "container" exits (stop() kills it too)
            self.restart_allowed.wait()  # stop() sets it as well
            if not self._stopping.is_set():
                self._spawn()

    def wait_started(self, starts: int, timeout: float) -> None:
        with self._restarted:
            assert self._restarted.wait_for(lambda: self.starts >= starts, timeout), (
                f"{self.name} was not restarted"
            )

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> None:
        """``docker compose stop``: SIGTERM, then SIGKILL after ``grace``; whole groups."""
        self._stopping.set()
        self.restart_allowed.set()
        if self.process is not None and self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        for pgid in self.pgids:  # pool processes and prover children included
            signal_group(pgid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            self.process.wait(10)
        if self._watcher is not None:  # its process has exited: it ends without a restart
            self._watcher.join(5)

    def leftovers(self) -> list[int]:
        """Process groups of this service that still have a member."""
        alive = []
        for pgid in self.pgids:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            alive.append(pgid)
        return alive


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group, if any member is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
