"""Scraping helpers of the metrics tests: real HTTP requests, the library's own parser."""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(url: str, auth: tuple[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
    """GET ``url``: (status, body); an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by (sample name, label set)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families(text: str) -> set[str]:
    """The metric family names of a scrape."""
    return {family.name for family in text_string_to_metric_families(text)}


def scrape(url: str, auth: tuple[str, str] | None = None) -> Samples:
    """Scrape ``url`` (it must answer 200) and parse it."""
    status, body = fetch(url, auth)
    assert status == 200, (status, body)
    return parse(body)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextmanager
def private_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (migrated) on the test server, dropped afterwards: the
    figures of a stack test must not include what earlier test modules left in the store."""
    import psycopg2

    from hms_celery.store.db import dispose_engines
    from hms_celery.store.migrate import upgrade

    name = f"hms_metrics_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(admin_url, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
    url = f"{base}/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        dispose_engines()
        admin = psycopg2.connect(admin_url, connect_timeout=10)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
