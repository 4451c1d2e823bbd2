"""cbserve replay: offline evaluation of policies on logged decisions.

- :mod:`replay.estimators`: IPS, SNIPS, DM, DR, SNDR on numpy arrays, with intervals;
- :mod:`replay.readers`: DSJSON (plain or gzip) logs, and :class:`EventLog` over the
  events of any store (the service builds one from its Redis); :mod:`replay.parquet_log`
  Parquet logs (a file, or a directory partitioned by day) read column by column;
- :mod:`replay.evaluate`: candidates and the logging policy in one table, with a
  cross-fitted reward model and rejection-sampling replay for learning policies;
- :mod:`replay.verdict`: the table's last line, its outcome and the next step.

No Flask, Redis or service here; the estimators are pure numpy.
"""
from .candidates import Candidate, candidate_from_mapping, load_candidate
from .errors import (BadEvent, CandidateError, EstimatorError, EventError, LogError, ReplayError,
                     ReplayWarning, SkipLearn, Unrewarded, Unsupported)
from .estimators import ESTIMATORS, Estimate, dm, dr, ips, sndr, snips
from .evaluate import LOGGING, Evaluation, evaluate
from .parquet_layout import write_parquet
from .parquet_log import ParquetLog
from .readers import DSJSONLog, EventLog, LogSource
from .sources import open_log
from .verdict import Verdict, conclude

__all__ = [
    "BadEvent", "Candidate", "CandidateError", "DSJSONLog", "ESTIMATORS", "Estimate",
    "EstimatorError", "EventError", "EventLog", "Evaluation", "LOGGING", "LogError", "LogSource",
    "ParquetLog", "ReplayError", "ReplayWarning", "SkipLearn", "Unrewarded", "Unsupported",
    "Verdict", "candidate_from_mapping", "conclude", "dm", "dr", "evaluate", "ips",
    "load_candidate", "open_log", "sndr", "snips", "write_parquet",
]
