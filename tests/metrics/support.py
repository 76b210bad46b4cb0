"""Scraping helpers of the metrics tests: real HTTP requests, the library's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client.parser import text_string_to_metric_families

from tests.support import http_get, scratch_database

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(url: str, auth: tuple[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
    """GET ``url``: (status, body text); an HTTP error status is returned, not raised."""
    status, body = http_get(url, auth, timeout)
    return status, body.decode(errors="replace")


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
    with scratch_database(admin_url, "hms_metrics", migrate=True) as url:
        yield url
