"""One machine's agent host: ``python -m tests.multihost.agent_host --ready-file F [options]``.

HMS's own :class:`~hms_celery.agents.host.AgentHost` (what ``hms up`` runs), with the given
prover agents, in the foreground of one namespace.  It takes the supervisor's commands from
its host queue (a respawn after a failure), and writes ``{"host_id", "hostname", "pid",
"agents"}`` to the ready file once its agents are spawned.  SIGTERM: a clean shutdown.
The settings come from the environment (``HMS_BROKER_URL``, ``HMS_DATABASE_URL``, …).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import threading
from pathlib import Path

from hms_celery.agents.host import AgentHost


def main(argv: list[str] | None = None) -> None:
    """Run the agent host until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--skills", default="prove.z3", help="comma-separated skills")
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    host = AgentHost()
    host.start()
    try:
        skills = args.skills.split(",")
        agents = [host.spawn(skills, {"concurrency": args.concurrency}) for _ in range(args.agents)]
        ready = {
            "host_id": host.host_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "agents": agents,
        }
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(args.ready_file)  # the reader never sees half a file
        stop.wait()
    finally:
        host.shutdown(grace=5)


if __name__ == "__main__":
    main()
