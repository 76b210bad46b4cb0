"""Self-healing: heartbeats, health reports, the supervisor sweep and recovery actions."""
