"""HMS: a self-healing multi-agent job system for formal verification, on Celery.

``celery -A hms_celery worker -Q prove.z3`` starts a prover agent; the Python client is
:mod:`hms_celery.client`, the command line ``hms``.

The Celery app is loaded lazily (``hms_celery.app`` on first access) so that importing a
submodule — the CLI, the errors — does not read the settings; a wrong setting then fails
where it can be reported with its name.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from hms_celery.app import app as celery_app

        return celery_app
    raise AttributeError(f"module 'hms_celery' has no attribute {name!r}")
