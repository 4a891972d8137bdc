"""Running jobs: the executor interface, the local executor and its supervisor, the agent, the pool."""
