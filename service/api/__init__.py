"""The HTTP edge: views, request parsing and limits, body bounds, API keys, the OpenAPI
document and ``/metrics``. :mod:`service.app` assembles them into the Flask app; the
decisions themselves are :class:`service.loops.LoopService`'s."""
