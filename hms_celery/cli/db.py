"""``hms db``: migrate the SQL store and show its schema revision."""

from __future__ import annotations

import typer

from hms_celery.cli.output import out
from hms_celery.errors import InfrastructureError
from hms_celery.settings import get_settings
from hms_celery.store.db import safe_url
from hms_celery.store.migrate import current_revision, head_revision, upgrade

db_cli = typer.Typer(help="The SQL store: migrations.", no_args_is_help=True)


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the store to the newest schema (Alembic)."""
    url = get_settings().effective_database_url
    try:
        at = upgrade(url, revision)
    except Exception as exc:  # alembic wraps driver errors; name the database
        raise InfrastructureError(f"migration failed: {exc}", url=safe_url(url)) from exc
    out.print(f"{safe_url(url)} at revision {at}", highlight=False)


@db_cli.command("current")
def db_current() -> None:
    """Show the store's schema revision."""
    url = get_settings().effective_database_url
    out.print(f"{safe_url(url)}: {current_revision(url)} (head {head_revision()})")
