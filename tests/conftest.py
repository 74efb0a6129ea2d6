"""Fixtures every test directory can use: the real peers in ``tests/peers``."""

pytest_plugins = [
    "tests.peers.postgres",
    "tests.peers.authserver.fixture",
    "tests.peers.dovecot",
    "tests.peers.mailapi",
]
