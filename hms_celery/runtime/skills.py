"""The skill registry: every queue, route and generic skill task of HMS derives from it.

A skill is a kind of work an agent (a Celery worker node) can do; an agent consumes the
queue of each of its skills (``celery -A hms_celery worker -Q prove.z3`` makes a Z3 prover).

Skills are plugins: a subclass of :class:`Skill` named by an entry point of the group
``hms_celery.skills``.  The built-ins (``prove.z3``, ``health``, ``supervisor``) are declared
in HMS's own ``pyproject.toml`` and take the same path as third-party skills::

    [project.entry-points."hms_celery.skills"]
    echo = "my_package:EchoSkill"

Adding a skill is one class plus one entry point: its queue (:func:`task_queues`), its
routes (:func:`task_routes`), its generic Celery task ``hms.skill.<id>``
(:func:`register_skill_tasks`) and its row in ``hms skills`` (:func:`skill_info`) follow.

The registry is loaded lazily, on first use, so that a built-in skill's module can import
this one.  A broken plugin never crashes the process: it is logged, skipped and listed by
:func:`skill_load_errors`.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import weakref
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from kombu import Exchange, Queue
from kombu.common import Broadcast

from hms_celery.errors import InputError

if TYPE_CHECKING:
    from celery import Celery, Task

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROOF_QUEUES",
    "PROVE_Z3",
    "SKILLS",
    "Skill",
    "SkillError",
    "SkillLoadError",
    "get_skill",
    "load_skills",
    "register_skill",
    "register_skill_tasks",
    "reload_skills",
    "skill_info",
    "skill_load_errors",
    "task_queues",
    "task_routes",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hms_celery.skills"
SKILL_TASK_PREFIX = "hms.skill."
BUILTIN_DISTRIBUTION = "hms-celery"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
"""Valid skill ids, queue names and task names: no spaces, no wildcards."""


class SkillError(InputError):
    """A skill class is invalid (bad id or queue, duplicate, not a :class:`Skill`)."""


class Skill(ABC):
    """A kind of work: JSON payload in, JSON result out, on the queue ``queue``.

    Subclasses set the class attributes and implement :meth:`execute`:

    * ``id`` — unique, e.g. ``"prove.z3"``; ``name`` (default: the id) and ``description``
      are for people.
    * ``queue`` — the queue agents with this skill consume (default: the id).
    * ``task_name`` — the generic Celery task that runs :meth:`execute` (default
      ``hms.skill.<id>``); ``task_names`` — further task names routed to ``queue`` (tasks
      the skill's package defines itself, such as ``hms.prove``).
    * ``broadcast`` — the queue is a fanout (:class:`kombu.common.Broadcast`): every agent
      consuming it receives every task.
    * ``acks_late`` — None: the app's default (late acknowledgement); False for tasks not
      worth redelivering after a lost worker.
    * ``proof_backend`` — the prover backend this skill runs (``"z3"``), if any; it makes
      :data:`PROOF_QUEUES`.
    """

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    queue: ClassVar[str] = ""
    task_name: ClassVar[str] = ""
    task_names: ClassVar[tuple[str, ...]] = ()
    broadcast: ClassVar[bool] = False
    acks_late: ClassVar[bool | None] = None
    proof_backend: ClassVar[str | None] = None

    _declared: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Fill ``name``, ``queue`` and ``task_name`` from ``id`` unless declared."""
        super().__init_subclass__(**kwargs)
        declared = cls._declared | {
            attr for attr in ("name", "queue", "task_name") if attr in cls.__dict__
        }
        cls._declared = frozenset(declared)
        if cls.id:
            if "name" not in declared:
                cls.name = cls.id
            if "queue" not in declared:
                cls.queue = cls.id
            if "task_name" not in declared:
                cls.task_name = f"{SKILL_TASK_PREFIX}{cls.id}"

    @abstractmethod
    def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Do the work described by the JSON object ``payload``; return a JSON object."""

    def can_handle(self, payload: dict[str, Any]) -> bool:
        """Whether this skill accepts ``payload`` (checked before :meth:`execute`)."""
        return True

    def make_queue(self) -> Queue:
        """The kombu queue of this skill (a fresh :class:`Broadcast` for broadcast skills)."""
        if self.broadcast:
            return Broadcast(self.queue, routing_key=self.queue)
        return Queue(self.queue, routing_key=self.queue)

    def route(self) -> dict[str, Any]:
        """The Celery route (``send_task`` options) of this skill's tasks.

        A broadcast route also declares its fanout exchange (with Redis, a virtual
        transport, a publisher that never declared it treats it as a direct exchange and
        the message reaches no agent) and names the routing key explicitly (Redis fanout
        is PUB/SUB on ``<exchange>/<routing key>``, which must equal the agents' binding).
        """
        if self.broadcast:
            exchange = Exchange(self.queue, type="fanout")
            return {
                "queue": self.queue,
                "exchange": self.queue,
                "routing_key": self.queue,
                "declare": [exchange],
            }
        return {"queue": self.queue, "routing_key": self.queue}

    def all_task_names(self) -> tuple[str, ...]:
        """The generic task first, then the skill's own tasks."""
        return (self.task_name, *(n for n in self.task_names if n != self.task_name))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r} queue={self.queue!r}>"


@dataclass(frozen=True)
class SkillLoadError:
    """An entry point that was skipped, and why."""

    entry_point: str  # "echo = hms_echo_skill:EchoSkill"
    distribution: str | None
    error: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- the registry
# These objects are mutated in place on reload, so references taken earlier stay current.
_SKILLS: dict[str, Skill] = {}
_SOURCES: dict[str, str] = {}
_PROOF_QUEUES: dict[str, str] = {}
_ERRORS: list[SkillLoadError] = []
_PROGRAMMATIC: list[type[Skill]] = []
_lock = threading.RLock()
_loaded = False

if TYPE_CHECKING:  # provided by the module __getattr__ below (the registry loads lazily)
    SKILLS: dict[str, Skill]
    """Skill id → skill instance."""
    PROVE_Z3: Skill
    """The ``prove.z3`` skill."""
    PROOF_QUEUES: dict[str, str]
    """Prover backend → the queue of the skill that runs it (``{"z3": "prove.z3"}``)."""


def __getattr__(name: str) -> Any:
    if name == "SKILLS":
        return load_skills()
    if name == "PROOF_QUEUES":
        load_skills()
        return _PROOF_QUEUES
    if name == "PROVE_Z3":
        return get_skill("prove.z3")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_skills() -> dict[str, Skill]:
    """The registry (skill id → instance), read from the entry points on first use."""
    if not _loaded:
        with _lock:
            if not _loaded:
                _load()
    return _SKILLS


def reload_skills() -> dict[str, Skill]:
    """Forget the registry and read the entry points again (after ``sys.path`` changed).

    Skills added with :func:`register_skill` are kept.  Celery tasks, queues and routes
    already applied to an app are not changed: they are read when the app is configured.
    """
    importlib.invalidate_caches()
    with _lock:
        _load()
    return _SKILLS


def _load() -> None:
    global _loaded
    skills: dict[str, Skill] = {}
    sources: dict[str, str] = {}
    errors: list[SkillLoadError] = []
    for ep in _entry_points():
        label = f"{ep.name} = {ep.value}"
        dist = ep.dist.name if ep.dist is not None else None
        try:
            cls = ep.load()
            skill = _instantiate(cls)
            _check(skill, skills)
            if skill.id != ep.name:
                log.warning("skill entry point %r names skill %r", label, skill.id)
        except Exception as exc:  # a broken plugin must not take the worker down
            message = f"{type(exc).__name__}: {exc}"
            log.error("skill entry point %r (%s) skipped: %s", label, dist or "unknown", message)
            errors.append(SkillLoadError(label, dist, message))
            continue
        skills[skill.id] = skill
        sources[skill.id] = f"{label} ({dist})" if dist else label
    for cls in _PROGRAMMATIC:
        label = f"register_skill({cls.__module__}.{cls.__qualname__})"
        try:
            skill = _instantiate(cls)
            _check(skill, skills)
        except Exception as exc:
            log.error("skill %s skipped: %s: %s", label, type(exc).__name__, exc)
            errors.append(SkillLoadError(label, None, f"{type(exc).__name__}: {exc}"))
            continue
        skills[skill.id] = skill
        sources[skill.id] = label
    _SKILLS.clear()
    _SKILLS.update(skills)
    _SOURCES.clear()
    _SOURCES.update(sources)
    _ERRORS[:] = errors
    _PROOF_QUEUES.clear()
    _PROOF_QUEUES.update(
        {s.proof_backend: s.queue for s in skills.values() if s.proof_backend is not None}
    )
    _loaded = True


def _entry_points() -> list[EntryPoint]:
    """The group's entry points, HMS's own first (they win a clash of ids)."""
    found = entry_points(group=ENTRY_POINT_GROUP)
    return sorted(found, key=lambda ep: ep.dist is None or ep.dist.name != BUILTIN_DISTRIBUTION)


def _instantiate(cls: object) -> Skill:
    if not (isinstance(cls, type) and issubclass(cls, Skill)):
        raise SkillError(f"{cls!r} is not a subclass of hms_celery.runtime.skills.Skill")
    return cls()


def _check(skill: Skill, known: dict[str, Skill]) -> None:
    """Raise :class:`SkillError` unless ``skill`` is valid and clashes with none of ``known``."""
    if not isinstance(skill.id, str) or not skill.id:
        raise SkillError(f"{type(skill).__qualname__} has no id")
    for what, value in (("id", skill.id), ("queue", skill.queue)):
        if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
            raise SkillError(f"skill {skill.id!r}: invalid {what} {value!r}")
    for task in skill.all_task_names():
        if not isinstance(task, str) or not _NAME_RE.fullmatch(task):
            raise SkillError(f"skill {skill.id!r}: invalid task name {task!r}")
    if skill.id in known:
        raise SkillError(
            f"duplicate skill id {skill.id!r} (already {type(known[skill.id]).__qualname__})"
        )
    for other in known.values():
        if other.queue == skill.queue:
            raise SkillError(f"skill {skill.id!r}: queue {skill.queue!r} is {other.id!r}'s")
        clash = set(other.all_task_names()) & set(skill.all_task_names())
        if clash:
            raise SkillError(f"skill {skill.id!r}: task {sorted(clash)} is {other.id!r}'s")


def register_skill(cls: type[Skill]) -> Skill:
    """Add a skill without an entry point (programmatic use, tests); returns its instance.

    Raises :class:`SkillError` if it is invalid.  Call it before the Celery app is
    configured, or call :func:`register_skill_tasks` and reconfigure the app afterwards.
    """
    load_skills()
    with _lock:
        skill = _instantiate(cls)
        _check(skill, _SKILLS)
        _PROGRAMMATIC.append(cls)
        _SKILLS[skill.id] = skill
        _SOURCES[skill.id] = f"register_skill({cls.__module__}.{cls.__qualname__})"
        if skill.proof_backend is not None:
            _PROOF_QUEUES[skill.proof_backend] = skill.queue
    return skill


def skill_load_errors() -> list[SkillLoadError]:
    """The entry points skipped by the last load."""
    load_skills()
    return list(_ERRORS)


def get_skill(skill_id: str) -> Skill:
    """The skill ``skill_id``; :class:`KeyError` listing the known ones otherwise."""
    skills = load_skills()
    try:
        return skills[skill_id]
    except KeyError:
        raise KeyError(f"unknown skill {skill_id!r}; known: {', '.join(sorted(skills))}") from None


def skill_info() -> list[dict[str, Any]]:
    """One JSON row per skill: what ``hms skills`` shows."""
    return [
        {
            "id": skill.id,
            "name": skill.name,
            "description": skill.description,
            "queue": skill.queue,
            "broadcast": skill.broadcast,
            "task_name": skill.task_name,
            "task_names": list(skill.all_task_names()[1:]),
            "source": _SOURCES.get(skill.id, ""),
        }
        for skill in sorted(load_skills().values(), key=lambda s: s.id)
    ]


# ---------------------------------------------------------------------- Celery wiring
def task_queues() -> list[Queue]:
    """One queue per skill: durable, or a fanout :class:`Broadcast` for broadcast skills."""
    return [skill.make_queue() for skill in load_skills().values()]


def task_routes() -> dict[str, dict[str, Any]]:
    """Route every task of a skill (generic and its own) to that skill's queue."""
    return {
        name: skill.route() for skill in load_skills().values() for name in skill.all_task_names()
    }


_registered_tasks: weakref.WeakKeyDictionary[Celery, set[str]] = weakref.WeakKeyDictionary()


def register_skill_tasks(app: Celery) -> list[str]:
    """Register the generic task ``skill.task_name`` of every skill with ``app``.

    The task checks :meth:`Skill.can_handle` (False: it returns ``{"error": ...}``, it does
    not raise), then returns :meth:`Skill.execute`'s result, which the result backend
    stores.  Idempotent; returns the names registered by this call.
    """
    done = _registered_tasks.setdefault(app, set())
    added = []
    for skill in load_skills().values():
        if skill.task_name in done:
            continue
        options: dict[str, Any] = {"name": skill.task_name, "bind": True, "shared": False}
        if skill.acks_late is not None:
            options["acks_late"] = skill.acks_late
        app.task(**options)(_skill_task(skill))
        done.add(skill.task_name)
        added.append(skill.task_name)
    return added


def _skill_task(skill: Skill) -> Any:
    def run_skill(task: Task, payload: Any = None) -> dict[str, Any]:
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            return {"error": f"skill {skill.id!r}: the payload must be a JSON object"}
        if not skill.can_handle(payload):
            return {"error": f"skill {skill.id!r} cannot handle this payload"}
        return skill.execute(payload)

    run_skill.__doc__ = f"Run the skill {skill.id!r}: {skill.description}"
    run_skill.__qualname__ = run_skill.__name__ = "skill_" + re.sub(r"\W", "_", skill.id)
    return run_skill
