"""Agents: Celery worker nodes, the skills they consume and the tasks they run."""
