"""API and learner in one process (``cbserve serve`` and ``cbserve demo``)."""
from __future__ import annotations

import logging
import threading

from .app import create_app
from .api.body import request_handler
from .config import Config
from .learner import Learner

log = logging.getLogger(__name__)

#: Seconds between the server's checks for a shutdown request (its stop latency).
SHUTDOWN_POLL_S = 0.1


class RunningService:
    """A threaded WSGI server for every loop of ``config`` plus its learner thread.

    ``port=0`` takes a free port; :attr:`url` says which. Use as a context manager
    (server in a background thread) or call :meth:`serve` (server in this thread).
    """

    def __init__(self, config: Config, client, host: str = "127.0.0.1", port: int = 0):
        from werkzeug.serving import make_server

        self.client = client  #: the Redis client the API and the learner use
        self.learner = Learner(client, config)
        self.server = make_server(host, port, create_app(config, client), threaded=True,
                                  request_handler=request_handler(config.read_timeout))
        self.url = f"http://{host}:{self.server.port}"
        self._threads = [threading.Thread(target=self.learner.run, name="learner", daemon=True)]

    def serve(self) -> None:
        """Serve until :meth:`shutdown` (e.g. from a signal handler), then stop the learner."""
        self._threads[0].start()
        try:
            self.server.serve_forever(poll_interval=SHUTDOWN_POLL_S)
        finally:
            self._stop_learner()

    def shutdown(self) -> None:
        threading.Thread(target=self.server.shutdown).start()

    def _stop_learner(self):
        self.learner.stop()
        self._threads[0].join(timeout=30)

    def __enter__(self):
        self._threads[0].start()
        server = threading.Thread(target=self.server.serve_forever, name="api", daemon=True)
        server.start()
        self._threads.append(server)
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self._threads[1].join(timeout=30)
        self.server.server_close()
        self._stop_learner()
