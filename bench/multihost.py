"""HMS across three hosts (Linux network namespaces): recovery from a dead host and a cut link.

Builds the stack of ``tests/multihost/cluster.py`` for each round — a bridge ``hmsmbr0``
(10.77.0.1/24) and namespaces ``hmsm-h1..h3`` (10.77.0.11-13) joined by veth links, a private
``redis-server`` on the bridge address, a TCP forwarder to the shared PostgreSQL (scratch
database ``hms_multihost_*``, dropped after), the supervisor and beat in the root namespace,
and in each namespace an agent host with one prover agent (``--concurrency`` pool processes)
— submits slow proofs, waits until they all run, then strikes the first host running one:

* ``kill`` — SIGKILL every process in its namespace;
* ``cut`` — its link down for ``--cut-s`` seconds (30), then up.

and prints, in seconds from the strike: the victim's agents FAILED, its in-flight tasks
re-published, re-run on another host and committed (by whom), tasks lost and committed twice,
and for the cut what the stale agents did once the link was back (heartbeats, state changes
after FAILED, commits won or refused, the expired respawn their host skipped), and where and
when the victim's agents were replaced (the respawn moved to another host after its deadline).

    sudo .venv/bin/python bench/multihost.py [--rounds 1] [--scenarios kill,cut]
        [--tasks 3] [--max-size 100] [--cut-s 30] [--concurrency 2] [--json out.json]

Needs root (``ip netns``); every namespace, link and process it made is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Nothing of the caller's own HMS configuration: the cluster sets every variable it needs.
for _name in [n for n in os.environ if n.startswith("HMS_") and not n.startswith("HMS_TEST_")]:
    del os.environ[_name]

from tests.multihost.cluster import Cluster  # noqa: E402
from tests.multihost.netns import NetnsUnavailable, check_available  # noqa: E402
from tests.multihost.scenarios import run_scenario  # noqa: E402


def _summary(fig: dict[str, Any]) -> dict[str, Any]:
    """One line of figures per round."""
    stale = list(fig["stale_agents"].values())
    reruns = list(fig["reruns"].values())
    return {
        "scenario": fig["scenario"],
        "in_flight": len(fig["in_flight"]),
        "failed_s": fig["agents_failed_s"],
        "requeued_s": max((min(r["requeued_s"]) for r in reruns if r["requeued_s"]), default=None),
        "rerun_started_s": max(
            (r["rerun_started_s"] for r in reruns if r["rerun_started_s"] is not None),
            default=None,
        ),
        "last_committed_s": fig["last_in_flight_committed_s"],
        "committed_by_stale": sum(1 for r in reruns if r["committed_by_stale"]),
        "lost": len(fig["lost"]),
        "twice": len(fig["committed_twice"]),
        "heartbeat_back_s": max(
            (a["heartbeat_back_s"] for a in stale if a["heartbeat_back_s"] is not None),
            default=None,
        ),
        "revived": sum(1 for a in stale for to, _, _ in a["after_failed"] if to != "TERMINATED"),
        "respawns": sum(a["respawns"] for a in stale),
        "stale_refused": len(fig["rejected_commits"]),
        "all_refused": len(fig["refused_commits"]),
        "respawn_expires_s": max(
            (a["respawn_expires_s"] for a in stale if a["respawn_expires_s"] is not None),
            default=None,
        ),
        "moved_s": max((at for a in stale for _, _, at in a["moved"]), default=None),
        "replacement_ready_s": max(
            (r["ready_s"] for r in fig["replacements"] if r["ready_s"] is not None),
            default=None,
        ),
        "replaced_on": ",".join(sorted({str(r["host"]) for r in fig["replacements"]})) or None,
        "skipped_s": max((at for a in stale for _, at, _ in a["respawn_skipped"]), default=None),
        "stale_alive_at_end": sum(1 for a in stale if a["process_alive_at_end"]),
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.rjust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(_fmt(row[k]).rjust(widths[k]) for k in keys))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each scenario")
    parser.add_argument("--scenarios", default="kill,cut")
    parser.add_argument("--tasks", type=int, default=3, help="proofs submitted per round")
    parser.add_argument("--max-size", type=int, default=100, help="sizes each proof checks")
    parser.add_argument("--cut-s", type=float, default=30.0)
    parser.add_argument(
        "--concurrency", type=int, default=2, help="pool processes per agent (1: no spare)"
    )
    parser.add_argument("--json", type=Path, help="write every round's full figures here")
    args = parser.parse_args()
    try:
        check_available()
    except NetnsUnavailable as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2

    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.node()}  "
        f"{os.cpu_count()} cores  load {os.getloadavg()[0]:.1f}  python {platform.python_version()}"
    )
    rounds: list[dict[str, Any]] = []
    for kind in args.scenarios.split(","):
        for i in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="hms-multihost-") as tmp:
                started = time.monotonic()
                with Cluster(Path(tmp), concurrency=args.concurrency) as cluster:
                    up_s = time.monotonic() - started
                    fig = run_scenario(
                        cluster, kind, tasks=args.tasks, max_size=args.max_size, cut_s=args.cut_s
                    )
                fig["cluster_up_s"] = round(up_s, 1)
                rounds.append(fig)
                row = _summary(fig)
                print(f"\n{kind} round {i + 1} (cluster up in {up_s:.1f}s):")
                _print_table([row])
                for task_id, rerun in fig["reruns"].items():
                    print(f"  task {task_id[:8]}: {json.dumps(rerun)}")
                for agent, seen in fig["stale_agents"].items():
                    print(f"  stale {agent}: {json.dumps(seen)}")
                for attempt in fig["stale_attempts"]:
                    print(f"  stale attempt: {json.dumps(attempt)}")

    print("\nsummary (seconds from the strike):")
    rows = [_summary(f) for f in rounds]
    _print_table(rows)
    for kind in args.scenarios.split(","):
        mine = [r for r in rows if r["scenario"] == kind]
        for key in ("failed_s", "last_committed_s"):
            values = [r[key] for r in mine if r[key] is not None]
            if len(values) > 1:
                median = statistics.median(values)
                print(f"{kind} {key}: median {median:.2f}  max {max(values):.2f}")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=1, default=str))
        print(f"figures written to {args.json}")
    bad = sum(r["lost"] + r["twice"] + r["revived"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
