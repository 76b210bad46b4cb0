"""Hosts on this machine: Linux network namespaces on one bridge (iproute2).

::

    root namespace: bridge hmsmbr0 10.77.0.1/24 ── Redis, the PostgreSQL forwarder, the
         │                                          supervisor and beat
         ├── hmsm-v1 ══ eth0 10.77.0.11  namespace hmsm-h1
         ├── hmsm-v2 ══ eth0 10.77.0.12  namespace hmsm-h2
         └── hmsm-v3 ══ eth0 10.77.0.13  namespace hmsm-h3

A host's processes run under ``ip netns exec`` and ``unshare --uts`` with a host name of their
own (``hmsm-h1``…): HMS names agents after the host name and only checks the pid of an agent
on its own host, so from the supervisor's side the agents really are somewhere else.

Cutting a host's link takes the root-side end of its veth down: its packets go nowhere and
its TCP connections stall (no reset), as when a cable or a switch port fails.  Everything is
named with the ``hmsm`` prefix; :meth:`Topology.cleanup` removes what a crashed run left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "hmsm"
BRIDGE = f"{PREFIX}br0"
SUBNET = "10.77.0"
BRIDGE_IP = f"{SUBNET}.1"


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, no kernel support)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; a failure raises with ip's own message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


@dataclass(frozen=True)
class Host:
    """One namespace: its name, address and the root-side end of its link."""

    index: int

    @property
    def name(self) -> str:
        """The namespace, also the host name of its processes."""
        return f"{PREFIX}-h{self.index}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def link(self) -> str:
        """The veth end on the bridge (taken down to cut the host off)."""
        return f"{PREFIX}-v{self.index}"


def check_available() -> None:
    """Raise :class:`NetnsUnavailable` (with the reason) unless namespaces can be made."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    probe = f"{PREFIX}-probe"
    try:
        ip("netns", "del", probe, check=False)
        ip("netns", "add", probe)
        ip("netns", "del", probe)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        raise NetnsUnavailable(f"`ip netns` does not work here: {exc}") from exc


class Topology:
    """The bridge and ``count`` host namespaces; :meth:`create` and :meth:`destroy`."""

    def __init__(self, count: int = 3) -> None:
        self.hosts = [Host(i) for i in range(1, count + 1)]

    def create(self) -> None:
        """Build the bridge and the namespaces (after removing leftovers of a crashed run)."""
        self.cleanup()
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for host in self.hosts:
            ip("netns", "add", host.name)
            ip("link", "add", host.link, "type", "veth", "peer", "name", f"{host.link}p")
            ip("link", "set", f"{host.link}p", "netns", host.name)
            ip("-n", host.name, "link", "set", f"{host.link}p", "name", "eth0")
            ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.name, "link", "set", "eth0", "up")
            ip("-n", host.name, "link", "set", "lo", "up")
            ip("link", "set", host.link, "master", BRIDGE, "up")

    def destroy(self) -> None:
        """Kill whatever still runs in the namespaces and remove them and the bridge."""
        self.cleanup()

    @staticmethod
    def cleanup() -> None:
        """Remove every ``hmsm`` namespace and link, killing the processes inside first."""
        listed = ip("netns", "list", check=False).stdout.split("\n")
        for line in listed:
            name = line.split(" ", 1)[0]
            if name.startswith(f"{PREFIX}-"):
                kill_namespace(name)
                ip("netns", "del", name, check=False)
        links = ip("-o", "link", "show", check=False).stdout.splitlines()
        for line in links:
            # "7: hmsm-v1@if6: <...>": the name, without the peer suffix
            name = line.split(":", 2)[1].strip().split("@", 1)[0] if ":" in line else ""
            if name.startswith(PREFIX):
                ip("link", "del", name, check=False)

    # ------------------------------------------------------------------ chaos
    def cut(self, host: Host) -> None:
        """Take the host's link down: it is cut off from the bridge and everything on it."""
        ip("link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        """Bring the host's link back up."""
        ip("link", "set", host.link, "up")

    def kill_all(self, host: Host) -> list[int]:
        """SIGKILL every process of the host (all of its namespace); returns their pids."""
        return kill_namespace(host.name)

    # ------------------------------------------------------------------ running
    @staticmethod
    def command(host: Host, argv: Sequence[str]) -> list[str]:
        """``argv`` run in the host's namespace under its own host name."""
        return [
            "ip", "netns", "exec", host.name,
            "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', host.name, *argv,
        ]  # fmt: skip


def namespace_pids(name: str) -> list[int]:
    """The pids of the processes in namespace ``name``."""
    out = ip("netns", "pids", name, check=False).stdout
    return [int(p) for p in out.split()]


def kill_namespace(name: str) -> list[int]:
    """SIGKILL every process in namespace ``name`` (repeated until none is left: a dying
    agent host may still be forking)."""
    killed: list[int] = []
    for _ in range(20):
        pids = namespace_pids(name)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)  # let the kernel finish them before looking again
    return sorted(set(killed))
