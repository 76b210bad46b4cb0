"""Tests of the agents: the skill registry and plugin skills."""
