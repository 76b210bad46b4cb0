"""Tests of the health policy, the agent state classification and the circuit breakers."""
