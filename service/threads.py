"""One BLAS thread per service process.

The service scales by processes (gunicorn workers, one learner), each doing small
matrix products: a rank scores a few dozen candidates against a model of a few hundred
weights. A BLAS library left to its default starts a thread per core in every process,
and those threads spin waiting for work while the other processes need the cores: on
a 2-core host, 5-slot ranks over 50 candidates ran 8–22 times slower that way. So each
API worker and learner caps its BLAS at one thread, with threadpoolctl (which finds
the library numpy loaded: OpenBLAS, MKL or BLIS).
"""
from __future__ import annotations

from threadpoolctl import threadpool_limits

_limits = None


def one_blas_thread() -> None:
    """Cap this process's BLAS thread pools at one thread (kept for the process's life)."""
    global _limits
    if _limits is None:
        _limits = threadpool_limits(limits=1, user_api="blas")
