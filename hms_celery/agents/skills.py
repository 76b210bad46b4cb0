"""The skill registry's public path for skill plugins (``from hms_celery.agents.skills import
Skill``): the registry itself is :mod:`hms_celery.runtime.skills`, below the app that derives
its queues and routes from it.  Names are looked up there on access (not copied at import:
some are computed lazily, on first use, from the loaded plugins)."""

from typing import Any

from hms_celery.runtime import skills as _registry
from hms_celery.runtime.skills import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_registry, name)
