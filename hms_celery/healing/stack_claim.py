"""One store per broker database: the stack's claim on its Redis database.

A Redis database holds one stack's queues, fanout channels and ``hms:*`` keys (heartbeats,
the supervisor lock, breakers).  Two stacks with different stores on one database would take
each other's tasks, drain each other's breaker events and share one supervisor lock, so that
is refused: every agent claims its broker database for its store when it starts
(``hms:stack:store``, expiring after :data:`CLAIM_TTL_S`) and renews the claim while it runs;
an agent of another store finds the claim and exits with :class:`StackConflictError` (exit 2),
and a client of another store refuses to submit.  Stacks on different databases (or servers)
never meet: kombu prefixes every fanout channel with the database number.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, cast

import redis
from celery import bootsteps

from hms_celery.errors import InputError
from hms_celery.healing.heartbeats import redis_client
from hms_celery.settings import Settings, get_settings
from hms_celery.store.db import safe_url

log = logging.getLogger(__name__)

CLAIM_KEY = "hms:stack:store"
CLAIM_TTL_S = 15.0
RENEW_EVERY_S = 3.0

# Take or renew the claim unless another store holds it; returns the holder.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder
"""


class StackConflictError(InputError):
    """This process's store differs from the one its broker database already serves."""

    def __init__(self, broker: str, holder: str, mine: str) -> None:
        self.holder = holder
        super().__init__(
            f"the broker database {safe_url(broker)} already serves the stack whose store is "
            f"{holder}, not this one's ({mine}): give each stack its own Redis database "
            "(HMS_BROKER_URL=redis://host:port/N) or the same store (HMS_DATABASE_URL)"
        )


def store_identity(settings: Settings) -> str:
    """The store as the claim names it (password hidden)."""
    return safe_url(settings.effective_database_url)


def claim(client: redis.Redis, settings: Settings | None = None) -> None:
    """Take or renew this store's claim on the broker database, or raise
    :class:`StackConflictError` naming the store that holds it."""
    settings = settings or get_settings()
    mine = store_identity(settings)
    holder = client.eval(_CLAIM, 1, CLAIM_KEY, mine, int(CLAIM_TTL_S * 1000))
    holder = holder.decode() if isinstance(holder, bytes) else str(holder)
    if holder != mine:
        raise StackConflictError(settings.effective_broker_url, holder, mine)


def check(client: redis.Redis, settings: Settings | None = None) -> None:
    """Raise :class:`StackConflictError` if another store holds the claim (no write)."""
    settings = settings or get_settings()
    holder = cast(bytes | None, client.get(CLAIM_KEY))  # the client does not decode
    mine = store_identity(settings)
    if holder is not None and holder.decode() != mine:
        raise StackConflictError(settings.effective_broker_url, holder.decode(), mine)


class StackClaimStep(bootsteps.StartStopStep):
    """Renews the claim every :data:`RENEW_EVERY_S` while the worker runs (every agent)."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        self.tref = worker.timer.call_repeatedly(RENEW_EVERY_S, self.renew)

    def renew(self) -> None:
        try:
            claim(redis_client())
        except StackConflictError as exc:  # someone took the database meanwhile: say it loudly
            log.error("%s", exc)
        except (redis.RedisError, ValueError) as exc:
            log.warning("could not renew the stack claim: %s", exc)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
