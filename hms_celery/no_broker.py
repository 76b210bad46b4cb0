"""The broker URL of a process that has none: every connection fails with :class:`NoStackError`.

With ``HMS_BROKER_URL`` unset and no stack recorded in the data directory, the Celery app is
configured with :data:`NO_BROKER_URL` instead of Celery's own default (``amqp://localhost``)
or a guessed Redis, so nothing can silently talk to another stack's broker: the first
connection attempt — a publish, a remote-control ping, a worker or beat starting — raises the
error that names the data directory and says to run ``hms up`` or set ``HMS_BROKER_URL``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from kombu.transport import TRANSPORT_ALIASES, virtual

from hms_celery.settings import NoStackError, get_settings

SCHEME = "hms-no-broker"
NO_BROKER_URL = f"{SCHEME}://"


def _fail() -> NoReturn:
    get_settings().effective_broker_url  # noqa: B018 - raises NoStackError naming the data dir
    raise NoStackError(get_settings().data_dir)  # settings changed since the app was configured


class Channel(virtual.Channel):
    """Never opened: :meth:`Transport.establish_connection` fails first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _fail()


class Transport(virtual.Transport):
    """A kombu transport whose every connection attempt raises :class:`NoStackError`."""

    Channel = Channel
    driver_type = driver_name = SCHEME
    # Not a connection error: Celery must not retry it forever, the error is final.
    connection_errors = ()  # type: ignore[assignment]  # kombu annotates a 1-tuple
    channel_errors = ()  # type: ignore[assignment]  # kombu annotates a 1-tuple

    def establish_connection(self) -> NoReturn:
        _fail()

    def driver_version(self) -> str:
        return "0"


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
