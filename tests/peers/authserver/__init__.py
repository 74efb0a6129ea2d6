"""A real OAuth 2.0 authorization server for the tests, on loopback only.

authlib's server side on Flask, in-memory state (persisted to a state dir so a restart
keeps it), run as its own process by ``python -m tests.peers.authserver --port N
--state-dir DIR``. ``fixture.py`` starts it for pytest (``auth_server``); ``app.py``
lists the endpoints, ``grants.py`` and ``assertions.py`` what each grant checks,
``control.py`` how tests steer it.
"""
