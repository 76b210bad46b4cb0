"""Flower, locked down: its address, port and basic auth from the HMS settings.

Flower runs as ``celery -A hms_celery flower --conf=<hms_celery/flowerconfig.py>`` (what
``hms service flower`` and ``hms up --flower`` start).  Flower executes that file, which takes
its options from :func:`flower_config`:

* the address is ``HMS_FLOWER_ADDRESS`` (default ``127.0.0.1``; Flower's own default, ``''``,
  would be every interface), unless ``--address``/``FLOWER_ADDRESS`` names one;
* basic auth is ``HMS_FLOWER_USER:HMS_FLOWER_PASSWORD`` when the password is set, else whatever
  Flower was given itself (``--basic-auth``, ``FLOWER_BASIC_AUTH``).  The credentials reach
  Flower through the environment and this file, never its command line (``ps`` shows that);
* a non-loopback address without basic auth is refused with a :class:`SettingsError`.

Flower 2.2 protects its pages and API with the basic auth but not ``/metrics`` and
``/healthcheck``: they answer without credentials, which is why Flower is published on
loopback only (see docs/deployment.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hms_celery.errors import SettingsError
from hms_celery.settings import Settings, is_loopback

#: The Flower configuration file (``--conf``): it applies :func:`flower_config`.
FLOWER_CONF = Path(__file__).with_name("flowerconfig.py")
#: Flower's own environment variable for basic auth (comma-separated ``user:password``).
FLOWER_BASIC_AUTH_ENV = "FLOWER_BASIC_AUTH"


@dataclass(frozen=True)
class FlowerConfig:
    """The Flower options HMS decides: where it listens and who may log in."""

    address: str
    port: int
    basic_auth: tuple[str, ...] = field(default=(), repr=False)  # "user:password" entries

    @property
    def authenticated(self) -> bool:
        return bool(self.basic_auth)

    @property
    def url(self) -> str:
        """Flower's URL as seen from this machine (every interface: via loopback)."""
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}/"

    def tornado_options(self) -> dict[str, Any]:
        """The globals the config file sets (Flower takes those named like its options)."""
        options: dict[str, Any] = {"address": self.address, "port": self.port}
        if self.basic_auth:
            options["basic_auth"] = list(self.basic_auth)
        return options


def flower_config(
    settings: Settings,
    *,
    address: str | None = None,
    port: int | None = None,
    basic_auth: Sequence[str] | None = None,
) -> FlowerConfig:
    """Flower's options from ``settings``; ``address``/``port``/``basic_auth`` override them.

    ``basic_auth`` is what Flower was already given; None reads ``FLOWER_BASIC_AUTH``.  HMS's
    own password, when set, takes precedence.  Raises :class:`SettingsError` for an address
    other than loopback without basic auth.
    """
    if basic_auth is None:
        basic_auth = [c for c in os.environ.get(FLOWER_BASIC_AUTH_ENV, "").split(",") if c]
    credentials = tuple(c for c in basic_auth if c)
    if settings.flower_password is not None:
        credentials = (f"{settings.flower_user}:{settings.flower_password.get_secret_value()}",)
    chosen = address or settings.flower_address
    if not credentials and not is_loopback(chosen):
        raise SettingsError(
            f"Flower would listen on {chosen!r} (HMS_FLOWER_ADDRESS), which is not a loopback "
            "address, without authentication: set HMS_FLOWER_PASSWORD (basic auth, user "
            "HMS_FLOWER_USER) or bind it to 127.0.0.1"
        )
    return FlowerConfig(address=chosen, port=port or settings.flower_port, basic_auth=credentials)


def flower_arguments(port: int | None = None) -> list[str]:
    """``celery -A hms_celery`` arguments that start Flower with :data:`FLOWER_CONF` (no
    secret in them: the password stays in the environment)."""
    args = ["flower", f"--conf={FLOWER_CONF}"]
    if port is not None:
        args.append(f"--port={port}")
    return args
