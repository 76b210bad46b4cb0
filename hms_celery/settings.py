"""All HMS settings, read once from the environment (prefix ``HMS_``) and ``config/hms.env``.

Every process — worker, beat, Flower, CLI, client — reads the same model, so one variable
changes the whole stack.  A wrong value fails at start-up with a :class:`SettingsError`
naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from hms_celery.errors import InfrastructureError, SettingsError

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
ENV_PREFIX = "HMS_"


class TimeLimits(NamedTuple):
    """A proof task's Celery time limits, in seconds (:meth:`Settings.time_limits`)."""

    soft: float
    hard: float


class Settings(BaseSettings):
    """HMS configuration. Each field is the environment variable ``HMS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=("config/hms.env", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- services ------------------------------------------------------------------------
    broker_url: str | None = Field(
        default=None,
        description="Celery broker. Unset: the stack `hms up` recorded in data_dir/stack.json "
        "(never a default Redis: with neither, commands exit 3).",
    )
    result_backend: str | None = Field(
        default=None,
        description="Celery result backend. Unset: the broker URL (a Redis broker), else the "
        "coordination Redis (HMS_REDIS_URL).",
    )
    redis_url: str | None = Field(
        default=None,
        description="The stack's coordination Redis (heartbeats, locks, breakers, the stack "
        "claim, the sweep histogram). Unset: the broker URL, which must then be Redis; "
        "required with an AMQP broker (docs/brokers.md).",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the store. Unset: SQLite in data_dir."
    )
    data_dir: Path = Field(
        default=Path("var"), description="Where the SQLite store, embedded Redis and logs live."
    )

    # --- prover --------------------------------------------------------------------------
    prover_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds one proof attempt may take."
    )
    prover_rlimit: int | None = Field(
        default=None, gt=0, description="Z3 deterministic resource limit per check (unset: none)."
    )
    bounded_max_size: int = Field(
        default=20, ge=0, le=200, description="Symbolic sizes n are checked for n = 0..this."
    )
    default_strategy: str | None = Field(
        default=None, description="Name or JSON of the Z3 strategy used when a task names none."
    )
    prover_sandbox: bool = Field(
        default=True,
        description="Run each proof attempt in a child process that is killed 2 s after the "
        "attempt's time limit (false: in the worker process, for debugging).",
    )
    prover_sandbox_memory_mb: int = Field(
        default=4096, ge=0, description="Address-space limit of that child, MiB (0: none)."
    )
    confirm_proved: bool = Field(
        default=True,
        description="Have the other solver (cvc5 for Z3, Z3 for cvc5) confirm every PROVED "
        "verdict on the same assertions; a disagreement is an ERROR (GA fitness: never).",
    )
    lean_workspace: Path = Field(
        default=REPO_ROOT / "lean_workspace", description="The Lean project holding the defs."
    )
    catalogue: Path | None = Field(
        default=None, description="Claims catalogue. Unset: lean_workspace/claims/moneyball.json."
    )

    # --- workers -------------------------------------------------------------------------
    worker_concurrency: int = Field(default=2, ge=1, le=64, description="Processes per worker.")
    prove_batch: int = Field(
        default=16,
        ge=1,
        le=256,
        description=(
            "Proofs per message when the client submits many at once (hms check): one "
            "hms.prove_batch opens their attempts, runs them and commits their results "
            "together; 1 publishes every proof alone."
        ),
    )
    time_limit_margin: float = Field(
        default=15.0, gt=0, description="Soft time limit = prover timeout + this; hard = + 2x."
    )
    # --- self-healing --------------------------------------------------------------------
    sweep_interval: float = Field(
        default=2.0, gt=0, le=300, description="Seconds between supervisor sweeps (beat)."
    )
    health_interval: float = Field(
        default=3.0, gt=0, le=300, description="Seconds between broadcast health checks."
    )
    heartbeat_timeout: float = Field(
        default=6.0, gt=0, le=600, description="No heartbeat for this long: the agent FAILED."
    )
    report_timeout: float = Field(
        default=10.0, gt=0, le=600, description="Health check unanswered this long: DEGRADED."
    )
    restart_max: int = Field(
        default=3, ge=0, le=10_000, description="At most this many restarts per agent line…"
    )
    restart_window: float = Field(default=60.0, gt=0, description="…in this many seconds.")
    restart_backoff: float = Field(
        default=1.0, ge=0, description="Backoff before the k-th restart: this × 2^(k-1) s…"
    )
    restart_backoff_max: float = Field(default=30.0, ge=0, description="…capped at this.")
    breaker_threshold: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failures that open a breaker."
    )
    breaker_cooldown: float = Field(
        default=30.0, ge=0, description="Seconds an open breaker waits before a trial."
    )
    # --- genetic strategy search ---------------------------------------------------------
    ga_population: int = Field(default=8, ge=2, le=200, description="Genomes per generation.")
    ga_generations: int = Field(default=6, ge=1, le=500, description="Generations per run.")
    ga_rlimit: int = Field(
        default=5_000_000,
        gt=0,
        description="Z3 rlimit budget of one fitness evaluation (deterministic: PAR-2 unit).",
    )
    ga_timeout: float = Field(
        default=10.0, gt=0, le=600, description="Wall-time cap of one fitness evaluation (s)."
    )
    ga_trigger_failures: int = Field(
        default=5,
        ge=0,
        le=10_000,
        description="UNKNOWN/TIMEOUT verdicts of one family within ga_trigger_window that "
        "start a GA run for it (0: never).",
    )
    ga_trigger_window: float = Field(
        default=600.0, gt=0, description="Seconds over which ga_trigger_failures are counted."
    )
    ga_auto_promote: bool = Field(
        default=True,
        description="Make a triggered run's winner its family's strategy at once (false: "
        "wait for `hms strategies promote`).",
    )
    ga_stall_after: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a generation may sit fully evaluated but unscored before the "
        "supervisor enqueues its scoring itself.",
    )
    # --- policy and approvals (issue 10, part 6: hms_celery/policy/engine.py) --------------
    policy_file: Path | None = Field(
        default=None,
        description="The policy rules file (TOML). Unset: the repository's config/policy.toml "
        "(built-in permissive rules when that file is not there).",
    )
    approval_ttl: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a pending approval waits for `hms approvals approve|deny` before "
        "the supervisor drops it (audited).",
    )
    # --- metrics (issue 10, part 3: hms_celery/metrics) -----------------------------------
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the HMS metrics endpoint served by a worker consuming the "
        "supervisor queue (unset: not served); `hms metrics serve` defaults to it.",
    )
    metrics_address: str = Field(
        default="127.0.0.1", min_length=1, description="Address the metrics endpoint binds."
    )
    metrics_user: str = Field(
        default="hms", min_length=1, description="Basic-auth user of the metrics endpoint."
    )
    metrics_password: SecretStr | None = Field(
        default=None,
        description="Basic-auth password of the metrics endpoint (unset: no auth, which is "
        "only allowed on a loopback address).",
    )

    @field_validator("metrics_password")
    @classmethod
    def _metrics_exposure(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            value = None  # an empty password is no password
        address = info.data.get("metrics_address")
        if address and value is None and not is_loopback(address):
            raise ValueError(
                f"HMS_METRICS_ADDRESS={address!r} is not a loopback address: set "
                "HMS_METRICS_PASSWORD (basic auth) to serve metrics there"
            )
        return value

    # --- flower (issue 10, part 4: hms_celery/flower.py, hms_celery/flowerconfig.py) ------
    flower_address: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address Flower binds; a non-loopback one needs HMS_FLOWER_PASSWORD "
        "(or Flower's own FLOWER_BASIC_AUTH).",
    )
    flower_port: int = Field(default=5555, ge=1, le=65535, description="Flower's port.")
    flower_user: str = Field(
        default="hms",
        min_length=1,
        pattern=r"^[^:,\s]+$",
        description="Basic-auth user of Flower (no ':', ',' or space).",
    )
    flower_password: SecretStr | None = Field(
        default=None,
        description="Basic-auth password of Flower (unset: no auth, only on loopback).",
    )

    @field_validator("flower_password")
    @classmethod
    def _flower_password(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is not None and not value.get_secret_value() else value

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    connect_timeout: float = Field(
        default=3.0, gt=0, le=120, description="Seconds to wait for the broker/database."
    )

    @field_validator("broker_url", "result_backend")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"redis", "rediss", "redis+socket", "amqp", "amqps", "pyamqp", "memory"}:
            raise ValueError(f"unsupported URL scheme in {value!r} (expected redis:// or amqp://…)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _coordination_redis(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A Redis URL; required when the broker is AMQP (it has no place for HMS's keys), and
        the broker's own database when the broker is Redis (one database, one stack)."""
        value = value or None
        broker = info.data.get("broker_url")
        if value is not None and not is_redis_url(value):
            raise ValueError(f"not a Redis URL: {value!r} (expected redis://host:port/N)")
        if value is None and broker and is_amqp_url(broker):
            raise ValueError(
                f"HMS_BROKER_URL={broker_identity(broker)} is AMQP: set HMS_REDIS_URL to a Redis "
                "database of this stack's own (redis://host:port/N) for heartbeats, locks, "
                "breakers and the stack claim"
            )
        redis_broker = broker if broker and is_redis_url(broker) else None
        if value and redis_broker and broker_identity(value) != broker_identity(redis_broker):
            raise ValueError(
                f"with a Redis broker HMS keeps its keys in the broker's database: leave "
                f"HMS_REDIS_URL unset (or {broker_identity(redis_broker)}), not {value!r}"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _sql_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg2:", "postgres:")):
            raise ValueError(f"unsupported database URL {value!r} (sqlite:/// or postgresql://)")
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; HMS ships psycopg2.
        for bare in ("postgres://", "postgresql://"):
            if value.startswith(bare):
                value = "postgresql+psycopg2://" + value[len(bare) :]
        return value

    # --- default strategy (issue 10, part 1: every setting validated at start-up) ----------
    @field_validator("default_strategy")
    @classmethod
    def _strategy_or_none(cls, value: str | None) -> str | None:
        """Blank means none.  Whether the value names a strategy is checked where the app is
        configured (:func:`hms_celery.verification.strategy.check_default_strategy`): the
        strategy catalogue needs Z3, which this bottom layer must not import."""
        if value is None or not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.lean_workspace = self.lean_workspace.expanduser().resolve()
        return self

    # --- derived -------------------------------------------------------------------------
    @property
    def stack_file(self) -> Path:
        """Where `hms up` records the URLs of the embedded stack it runs."""
        return self.data_dir / "stack.json"

    def embedded_stack(self) -> dict[str, str] | None:
        """The URLs published by a running `hms up`, if any."""
        try:
            return json.loads(self.stack_file.read_text())
        except (OSError, ValueError):
            return None

    # --- broker resolution (issue 10, part 2: stacks that cannot step on each other) -------
    @property
    def resolved_broker_url(self) -> str | None:
        """``HMS_BROKER_URL``, else the broker of the stack recorded in ``stack.json``, else
        None — never a default Redis that may belong to another stack."""
        if self.broker_url:
            return self.broker_url
        stack = self.embedded_stack()
        if stack and stack.get("broker_url"):
            return str(stack["broker_url"])
        return None

    @property
    def effective_broker_url(self) -> str:
        """The broker every part of this stack uses; :class:`NoStackError` if there is none."""
        url = self.resolved_broker_url
        if url is None:
            raise NoStackError(self.data_dir)
        return url

    @property
    def default_result_backend(self) -> str | None:
        """The result backend when ``HMS_RESULT_BACKEND`` is unset: a Redis broker itself, the
        coordination Redis with an AMQP broker (Celery 5 has no AMQP result store that chords
        can use); None without a broker."""
        broker = self.resolved_broker_url
        if broker is None or is_redis_url(broker):
            return broker
        return self.redis_url

    @property
    def effective_result_backend(self) -> str:
        return self.result_backend or self.default_result_backend or self.effective_broker_url

    @property
    def coordination_url(self) -> str:
        """The Redis database holding this stack's ``hms:*`` keys: ``HMS_REDIS_URL``, else a
        Redis broker's own database.  :class:`NoStackError` without a broker;
        :class:`SettingsError` (naming HMS_REDIS_URL) for a broker that is not Redis."""
        if self.redis_url:
            return self.redis_url
        broker = self.effective_broker_url
        if not is_redis_url(broker):
            raise SettingsError(
                f"HMS needs a Redis for its coordination state: HMS_BROKER_URL="
                f"{broker_identity(broker)} is not Redis, so set HMS_REDIS_URL=redis://host:port/N"
            )
        return broker

    @property
    def stack_id(self) -> str:
        """The stack this process belongs to: its broker's server and database or virtual
        host (one Redis database, or one AMQP vhost, holds one stack's queues).  Agents
        record it; a supervisor judges only the agents of its own stack, even when several
        stacks share one store."""
        return broker_identity(self.effective_broker_url)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'hms.db'}"

    @property
    def catalogue_path(self) -> Path:
        return self.catalogue or self.lean_workspace / "claims" / "moneyball.json"

    def time_limits(self, timeout: float | None = None) -> TimeLimits:
        """Celery's soft and hard time limits for a proof whose prover has ``timeout``
        seconds (default: ``prover_timeout``): one margin for the prover to stop and report,
        a second before the pool process is killed."""
        base = timeout or self.prover_timeout
        return TimeLimits(base + self.time_limit_margin, base + 2 * self.time_limit_margin)

    @property
    def soft_time_limit(self) -> float:
        return self.time_limits().soft

    @property
    def hard_time_limit(self) -> float:
        return self.time_limits().hard


class NoStackError(InfrastructureError):
    """No ``HMS_BROKER_URL`` and no stack recorded in the data directory (exit code 3)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        super().__init__(
            f"no HMS stack: HMS_BROKER_URL is unset and no running stack is recorded in "
            f"{data_dir / 'stack.json'}; start one there with `hms up` "
            f"(HMS_DATA_DIR={data_dir}), or set HMS_BROKER_URL to the broker of a running stack"
        )


_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "pyamqp": 5672}


def is_redis_url(url: str) -> bool:
    """Whether ``url`` names a Redis server (a broker HMS can keep its own keys in)."""
    return url.startswith(("redis://", "rediss://", "unix://"))


def is_amqp_url(url: str) -> bool:
    """Whether ``url`` names an AMQP broker (RabbitMQ, through py-amqp)."""
    return url.split("://", 1)[0].lower() in {"amqp", "amqps", "pyamqp"}


def broker_identity(url: str) -> str:
    """``scheme://host:port/db`` of a Redis URL, ``amqp://host:port/<vhost>`` of an AMQP one,
    without credentials or options: equal for two URLs exactly when they name one stack's
    broker (kombu's vhost rules: ``amqp://h``, ``amqp://h/`` and ``amqp://h//`` are "/")."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.startswith("redis") and scheme != "redis+socket":
        host = (parts.hostname or "127.0.0.1").lower()
        host = "127.0.0.1" if host == "localhost" else host
        db = parts.path.strip("/") or "0"
        return f"{scheme}://{host}:{parts.port or _DEFAULT_PORTS[scheme]}/{db}"
    if is_amqp_url(url):
        scheme = "amqps" if scheme == "amqps" else "amqp"  # pyamqp:// is amqp:// in kombu
        host = (parts.hostname or "127.0.0.1").lower()
        host = "127.0.0.1" if host == "localhost" else host
        vhost = unquote(parts.path[1:]) or "/"  # what kombu sends as the virtual host
        return f"{scheme}://{host}:{parts.port or _DEFAULT_PORTS[scheme]}/{quote(vhost, safe='')}"
    host = (parts.hostname or "").lower()
    port = f":{parts.port or _DEFAULT_PORTS.get(scheme, '')}" if host else ""
    return f"{scheme}://{host}{port}{parts.path or '/'}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; a wrong value raises :class:`SettingsError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "settings"
            name = f"{ENV_PREFIX}{field.upper()}"
            value = os.environ.get(name, err.get("input"))
            problems.append(f"{name}={value!r}: {err['msg']}")
        raise SettingsError("invalid setting: " + "; ".join(problems)) from None


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP address or ``localhost``) only accepts local connections."""
    if address.strip("[]").lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and `hms up` change the environment)."""
    get_settings.cache_clear()
