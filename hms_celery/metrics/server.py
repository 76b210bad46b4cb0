"""The metrics endpoint: ``prometheus_client``'s WSGI app behind an optional basic-auth check.

``prometheus_client.start_http_server`` (0.26) has TLS but no authentication, so HMS serves
the library's own WSGI app (:func:`prometheus_client.make_wsgi_app`) through a small
middleware that checks HTTP basic auth with a constant-time comparison
(:func:`hmac.compare_digest`), on a threaded ``wsgiref`` server in a daemon thread.

A non-loopback address without a password is refused (:class:`SettingsError`): the figures
name agents, hosts and theorem families, which are nobody else's business.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from hms_celery.errors import InputError, SettingsError
from hms_celery.metrics.collector import make_registry
from hms_celery.settings import Settings, get_settings, is_loopback

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
REALM = "HMS metrics"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Endpoint:
    """Where and how to serve: address, port (0: any free one), basic-auth credentials."""

    address: str
    port: int
    user: str = "hms"
    password: str | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        port: int | None = None,
        address: str | None = None,
    ) -> Endpoint:
        """The endpoint of ``HMS_METRICS_*``, with ``port``/``address`` overriding them."""
        settings = settings or get_settings()
        secret = settings.metrics_password
        chosen_port = settings.metrics_port if port is None else port
        if chosen_port is None:
            raise SettingsError("no metrics port: set HMS_METRICS_PORT or pass --port")
        return cls(
            address=address or settings.metrics_address,
            port=chosen_port,
            user=settings.metrics_user,
            password=secret.get_secret_value() if secret else None,
        )

    def check(self) -> None:
        """Refuse to serve a non-loopback address without a password."""
        if not self.password and not is_loopback(self.address):
            raise SettingsError(
                f"refusing to serve metrics on {self.address!r} without authentication: "
                "set HMS_METRICS_PASSWORD (basic auth) or bind a loopback address "
                "(HMS_METRICS_ADDRESS=127.0.0.1)"
            )


def basic_auth(app: WSGIApp, user: str, password: str) -> WSGIApp:
    """``app`` behind HTTP basic auth: 401 with a challenge unless the credentials match."""
    expected = f"{user}:{password}".encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        given = b""
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(token.strip(), validate=True)
            except (binascii.Error, ValueError):
                given = b""
        # Constant time on the whole "user:password", so a probe learns nothing from timing.
        if given and hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
        )
        return [b"authentication required\n"]

    return guarded


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client must not keep the process alive
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s: " + format, self.address_string(), *args)


@dataclass
class MetricsServer:
    """An HTTP server for ``registry`` at ``endpoint`` in a daemon thread."""

    endpoint: Endpoint
    registry: CollectorRegistry
    _httpd: WSGIServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> MetricsServer:
        """Bind and start serving; raises :class:`SettingsError` for an unsafe address and
        :class:`InputError` when the address cannot be bound (in use, not local)."""
        self.endpoint.check()
        app: WSGIApp = make_wsgi_app(self.registry)
        if self.endpoint.password:
            app = basic_auth(app, self.endpoint.user, self.endpoint.password)
        server_class: type[_Server] = type("MetricsHTTPServer", (_Server,), {})
        try:
            infos = socket.getaddrinfo(
                self.endpoint.address, self.endpoint.port, type=socket.SOCK_STREAM
            )
            server_class.address_family = infos[0][0]
            self._httpd = make_server(
                cast(str, infos[0][4][0]),  # an IPv4/IPv6 sockaddr: (host, port, ...)
                self.endpoint.port,
                app,
                server_class=server_class,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            raise InputError(
                f"cannot serve metrics on {self.endpoint.address}:{self.endpoint.port}: "
                f"{exc.strerror or exc} (HMS_METRICS_ADDRESS / HMS_METRICS_PORT)"
            ) from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hms-metrics", daemon=True
        )
        self._thread.start()
        log.info("HMS metrics on %s", self.url)
        return self

    @property
    def port(self) -> int:
        """The bound port (the real one when the endpoint asked for 0)."""
        return self._httpd.server_port if self._httpd else self.endpoint.port

    @property
    def url(self) -> str:
        host = self.endpoint.address
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{METRICS_PATH}"

    def close_inherited(self) -> None:
        """In a forked child: close this process's copy of the listening socket (close, not
        shutdown: the parent's copy keeps serving) and forget the server."""
        if self._httpd is not None:
            self._httpd.socket.close()
            self._httpd = None
            self._thread = None

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def serve(endpoint: Endpoint, registry: CollectorRegistry | None = None) -> MetricsServer:
    """Start serving the HMS collector (or ``registry``) at ``endpoint``."""
    endpoint.check()  # before the collector reads any setting: refuse an unsafe bind first
    return MetricsServer(endpoint, registry or make_registry()).start()
