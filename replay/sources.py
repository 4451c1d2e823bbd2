"""The reader for a log named on a command line: a Parquet log, else a DSJSON file.

A Redis URL is the service's to read (:func:`service.export.open_log` takes files too).
"""
from __future__ import annotations

import os

from .errors import LogError
from .parquet_log import ParquetLog
from .readers import REDIS_SCHEMES, DSJSONLog, LogSource


def open_log(spec: str) -> LogSource:
    """The reader for ``spec``: a ``.parquet`` file or a directory of them (a Parquet
    log), else a DSJSON file (plain or gzip)."""
    if spec.startswith(REDIS_SCHEMES):
        raise LogError(f"--log: {spec} is a Redis URL; the service reads it "
                       "(service.export.open_log, or scripts/replay_eval.py)")
    if spec.endswith(".parquet") or os.path.isdir(spec):
        return ParquetLog(spec)
    return DSJSONLog(spec)
