"""One store per broker database: the stack's claim on its Redis database.

A Redis database holds one stack's queues, fanout channels and ``hms:*`` keys (heartbeats,
the supervisor lock, breakers).  Two stacks with different stores on one database would take
each other's tasks, drain each other's breaker events and share one supervisor lock, so that
is refused: every agent claims its broker database for its store when it starts
(``hms:stack:store``, expiring after :data:`CLAIM_TTL_S`) and renews the claim while it runs;
an agent of another store finds the claim and exits with :class:`StackConflictError` (exit 2),
and a client of another store refuses to submit.  Stacks on different databases (or servers)
never meet: kombu prefixes every fanout channel with the database number.

With an AMQP broker the queues live in a RabbitMQ virtual host and the ``hms:*`` keys in the
coordination Redis (``HMS_REDIS_URL``); the claim is then on that Redis database and names the
broker's vhost as well as the store, so two stacks on different vhosts cannot share one
coordination database (their supervisor locks, heartbeats and breakers would mix).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, cast

import redis
from celery import bootsteps

from hms_celery.errors import InputError
from hms_celery.healing.heartbeats import redis_client
from hms_celery.settings import Settings, get_settings, is_redis_url
from hms_celery.store.db import safe_url

log = logging.getLogger(__name__)

CLAIM_KEY = "hms:stack:store"
#: The agents holding the claim (sorted set: agent → last renewal, ms): the last one to stop
#: cleanly releases the claim at once, so the database can serve another store right away.
CLAIMANTS_KEY = "hms:stack:claimants"
CLAIM_TTL_S = 15.0
RENEW_EVERY_S = 3.0

# Take or renew the claim unless another store holds it (and note the claimant, if one is
# named); returns the holder.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ARGV[3] ~= '' then
    local now = redis.call('TIME')
    redis.call('ZADD', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000), ARGV[3])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  return ARGV[1]
end
return holder
"""

# A claimant leaves; the claim goes with the last live one (renewed within the TTL).
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[2])
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"""


class StackConflictError(InputError):
    """This process's store differs from the one its broker database already serves."""

    def __init__(self, broker: str, holder: str, mine: str, *, coordination: bool = False) -> None:
        self.holder = holder
        if coordination:  # an AMQP broker: the claim is on HMS_REDIS_URL's database
            super().__init__(
                f"the coordination Redis database {safe_url(broker)} already serves the stack "
                f"whose store is {holder}, not this one's ({mine}): give each stack its own "
                "Redis database (HMS_REDIS_URL=redis://host:port/N)"
            )
            return
        super().__init__(
            f"the broker database {safe_url(broker)} already serves the stack whose store is "
            f"{holder}, not this one's ({mine}): give each stack its own Redis database "
            "(HMS_BROKER_URL=redis://host:port/N) or the same store (HMS_DATABASE_URL)"
        )


def store_identity(settings: Settings) -> str:
    """The stack as the claim names it: its store (password hidden), and its broker's vhost
    when the claimed database is not the broker's (AMQP)."""
    store = safe_url(settings.effective_database_url)
    if _separate(settings):
        return f"{store} via {settings.stack_id}"
    return store


def _separate(settings: Settings) -> bool:
    """Whether the coordination Redis is not the broker (an AMQP broker)."""
    return not is_redis_url(settings.effective_broker_url)


def _conflict(settings: Settings, holder: str, mine: str) -> StackConflictError:
    if _separate(settings):
        return StackConflictError(settings.coordination_url, holder, mine, coordination=True)
    return StackConflictError(settings.effective_broker_url, holder, mine)


def claim(client: redis.Redis, settings: Settings | None = None, claimant: str = "") -> None:
    """Take or renew this store's claim on the broker database (for agent ``claimant``, if
    named), or raise :class:`StackConflictError` naming the store that holds it."""
    settings = settings or get_settings()
    mine = store_identity(settings)
    ttl_ms = int(CLAIM_TTL_S * 1000)
    holder = client.eval(_CLAIM, 2, CLAIM_KEY, CLAIMANTS_KEY, mine, ttl_ms, claimant)
    holder = holder.decode() if isinstance(holder, bytes) else str(holder)
    if holder != mine:
        raise _conflict(settings, holder, mine)


def release(client: redis.Redis, claimant: str, settings: Settings | None = None) -> bool:
    """Agent ``claimant`` stops: the claim is dropped if no other live agent holds it
    (returns whether it was)."""
    settings = settings or get_settings()
    mine = store_identity(settings)
    ttl_ms = int(CLAIM_TTL_S * 1000)
    return bool(client.eval(_RELEASE, 2, CLAIM_KEY, CLAIMANTS_KEY, mine, claimant, ttl_ms))


def check(client: redis.Redis, settings: Settings | None = None) -> None:
    """Raise :class:`StackConflictError` if another store holds the claim (no write)."""
    check_holder(cast(bytes | None, client.get(CLAIM_KEY)), settings)


def check_holder(holder: bytes | None, settings: Settings | None = None) -> None:
    """:func:`check` on a claim value already read (``GET`` :data:`CLAIM_KEY`, undecoded),
    e.g. in a pipeline with other reads."""
    settings = settings or get_settings()
    mine = store_identity(settings)
    if holder is not None and holder.decode() != mine:
        raise _conflict(settings, holder.decode(), mine)


class StackClaimStep(bootsteps.StartStopStep):
    """Renews the claim every :data:`RENEW_EVERY_S` while the worker runs (every agent)."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.claimant = ""

    def start(self, worker: Any) -> None:
        self.claimant = str(worker.hostname)
        self.renew()
        self.tref = worker.timer.call_repeatedly(RENEW_EVERY_S, self.renew)

    def renew(self) -> None:
        try:
            claim(redis_client(), claimant=self.claimant)
        except StackConflictError as exc:  # someone took the database meanwhile: say it loudly
            log.error("%s", exc)
        except (redis.RedisError, ValueError) as exc:
            log.warning("could not renew the stack claim: %s", exc)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
            try:  # a clean stop: the last agent of the stack frees the database at once
                release(redis_client(), self.claimant)
            except (redis.RedisError, ValueError) as exc:
                log.warning("could not release the stack claim (it expires): %s", exc)
