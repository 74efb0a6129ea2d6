"""Real peers the tests start on loopback (PostgreSQL, …), as pytest fixtures."""
