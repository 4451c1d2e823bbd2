"""cbserve service: the HTTP API, the Redis store, the reward join, the learner, the CLI.

- :mod:`service.app` (the Flask factory) and :mod:`service.api` (the HTTP edge);
- :mod:`service.loops` and :mod:`service.models`: one loop as the API serves it;
- :mod:`service.store`: Redis, the only store, and every call made to it;
- :mod:`service.learner`: joined events in, versioned model snapshots out;
- :mod:`service.config` and :mod:`service.errors`: the TOML file; the error family;
- :mod:`service.export` and :mod:`service.transitions`: a loop's log out of Redis;
- :mod:`service.cli`, :mod:`service.embedded`, :mod:`service.embedded_redis`: the
  ``cbserve`` command and the one-process deployment with its embedded Redis;
- :mod:`service.sim`: simulated users; :mod:`service.testing`: the test and benchmark harness.
"""
