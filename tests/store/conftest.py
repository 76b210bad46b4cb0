"""The ``store_url`` fixture: each store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hms_celery.store.migrate import upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    upgrade(url)
    monkeypatch.setenv("HMS_DATABASE_URL", url)
    from hms_celery.settings import reset_settings

    reset_settings()
    yield url
    reset_settings()
