"""The built-in skills, each a :class:`~hms_celery.runtime.skills.Skill` subclass.

They are registered like any plugin, by the ``hms_celery.skills`` entry points of HMS's own
``pyproject.toml``; nothing imports them directly.
"""
