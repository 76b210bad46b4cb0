"""All HMS settings, read once from the environment (prefix ``HMS_``) and ``config/hms.env``.

Every process — worker, beat, Flower, CLI, client — reads the same model, so one variable
changes the whole stack.  A wrong value fails at start-up with a :class:`SettingsError`
naming the variable.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hms_celery.errors import SettingsError

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
ENV_PREFIX = "HMS_"


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
        description="Celery broker. Unset: the stack started by `hms up` (embedded Redis), "
        f"else {DEFAULT_BROKER_URL}.",
    )
    result_backend: str | None = Field(
        default=None, description="Celery result backend. Unset: the broker URL."
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
            raise ValueError(f"unsupported URL scheme in {value!r} (expected redis://…)")
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

    @property
    def effective_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        stack = self.embedded_stack()
        if stack and stack.get("broker_url"):
            return stack["broker_url"]
        return DEFAULT_BROKER_URL

    @property
    def effective_result_backend(self) -> str:
        return self.result_backend or self.effective_broker_url

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'hms.db'}"

    @property
    def catalogue_path(self) -> Path:
        return self.catalogue or self.lean_workspace / "claims" / "moneyball.json"

    @property
    def soft_time_limit(self) -> float:
        return self.prover_timeout + self.time_limit_margin

    @property
    def hard_time_limit(self) -> float:
        return self.prover_timeout + 2 * self.time_limit_margin


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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and `hms up` change the environment)."""
    get_settings.cache_clear()
