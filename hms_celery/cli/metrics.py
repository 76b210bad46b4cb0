"""``hms metrics``: serve or print the HMS metrics (the same figures the supervisor serves)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from prometheus_client import generate_latest

from hms_celery.metrics.collector import make_registry
from hms_celery.metrics.server import Endpoint, serve
from hms_celery.settings import get_settings

metrics_cli = typer.Typer(
    help="HMS metrics for Prometheus (queues, tasks, verdicts, agents, recoveries, GA).",
    no_args_is_help=True,
)

#: ``hms metrics serve``'s port when neither --port nor HMS_METRICS_PORT says otherwise.
DEFAULT_PORT = 9464


@metrics_cli.command("serve")
def metrics_serve(
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port (default HMS_METRICS_PORT, else 9464)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Address to bind (default HMS_METRICS_ADDRESS).")
    ] = None,
) -> None:
    """Serve /metrics in the foreground, reading the store and broker at each scrape.

    Basic auth when HMS_METRICS_PASSWORD is set (a public address needs it). Ctrl-C stops.
    """
    settings = get_settings()
    chosen = port if port is not None else (settings.metrics_port or DEFAULT_PORT)
    server = serve(Endpoint.from_settings(settings, port=chosen, address=address))
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    auth = " (basic auth)" if server.endpoint.password else ""
    typer.echo(f"serving HMS metrics on {server.url}{auth}; Ctrl-C stops")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    typer.echo("stopped.")


@metrics_cli.command("show")
def metrics_show() -> None:
    """Print one scrape (Prometheus text format) and exit."""
    typer.echo(generate_latest(make_registry()).decode(), nl=False)
