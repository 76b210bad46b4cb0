"""``hms audit``: the audit log queried by subject, action and time range, as a table or JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hms_celery import client
from hms_celery.cli.output import out, print_table

#: A time relative to now: ``90s``, ``10m``, ``2h``, ``1d``, ``1w`` (that long ago).
RELATIVE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC time from ISO-8601 (``2026-12-01T15:00:00Z``, ``2026-12-01 15:00``,
    ``2026-12-01``; without a zone: UTC) or a span ago (``10m``, ``2h``, ``1d``).
    ``ValueError`` says what is accepted."""
    text = value.strip()
    relative = RELATIVE.fullmatch(text)
    if relative:
        seconds = float(relative.group(1)) * UNITS[relative.group(2).lower()]
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"{value!r} is too far in the past") from None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: give ISO-8601 (2026-12-01T15:00:00Z, 2026-12-01) "
            "or a span ago (90s, 10m, 2h, 1d, 1w)"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def audit_command(
    subject: Annotated[
        str | None, typer.Option("--subject", "-s", help="Only events about this subject.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            "-a",
            help="Only this action and its sub-actions (task.submitted; task; 'recovery.' "
            "or 'recovery*' for a prefix).",
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_time, metavar="TIME", help="At or after TIME: ISO-8601, or 10m, 2h, 1d."
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(parser=parse_time, metavar="TIME", help="Before TIME (same forms)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100_000, help="The newest N events.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The audit log: what happened to what, by whom and why — oldest first, the newest
    LIMIT events that match every filter."""
    if since is not None and until is not None and since >= until:
        raise typer.BadParameter(
            f"--since {since.isoformat()} is not before --until {until.isoformat()}",
            param_hint="'--since'",
        )
    events = client.audit_log(subject=subject, action=action, since=since, until=until, limit=limit)
    if as_json:
        out.print_json(data=events)
        return
    table = Table("id", "at (UTC)", "actor", "action", "subject", "details", title=_title(events))
    for e in events:
        table.add_row(
            str(e["id"]),
            _at(e["at"]),
            Text(e["actor"] or ""),
            Text(e["action"]),
            Text(e["subject"] or "—"),
            Text(_details(e["details"])),
        )
    print_table(table)


def _title(events: list[dict[str, Any]]) -> str:
    return f"{len(events)} audit event{'s' if len(events) != 1 else ''}"


def _at(value: str | None) -> str:
    if not value:
        return "—"
    at = datetime.fromisoformat(value).astimezone(UTC)  # the store's times are aware
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _details(details: dict[str, Any] | None) -> str:
    """Every detail, whole: ``key=value`` with JSON for lists and objects."""
    parts = []
    for key, value in (details or {}).items():
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}={value}")
    return ", ".join(parts)
