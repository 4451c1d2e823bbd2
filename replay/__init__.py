"""cbserve replay: offline evaluation of policies on logged decisions.

- :mod:`replay.estimators`: IPS, SNIPS, DM, DR, SNDR on numpy arrays, with intervals;
- :mod:`replay.readers`: the Redis stream, DSJSON (plain or gzip) and Parquet logs;
- :mod:`replay.evaluate`: candidates and the logging policy in one table, with a
  cross-fitted reward model and rejection-sampling replay for learning policies;
- :mod:`replay.verdict`: the table's last line, its outcome and the next step.

No Flask here; the estimators are pure numpy.
"""
from .candidates import Candidate, candidate_from_mapping, load_candidate
from .errors import CandidateError, EstimatorError, LogError, ReplayError, ReplayWarning
from .estimators import ESTIMATORS, Estimate, dm, dr, ips, sndr, snips
from .evaluate import LOGGING, Evaluation, evaluate
from .readers import DSJSONLog, ParquetLog, RedisLog, open_log, write_parquet
from .verdict import Verdict, conclude

__all__ = [
    "Candidate", "CandidateError", "DSJSONLog", "ESTIMATORS", "Estimate", "EstimatorError",
    "Evaluation", "LOGGING", "LogError", "ParquetLog", "RedisLog", "ReplayError",
    "ReplayWarning", "Verdict", "candidate_from_mapping", "conclude", "dm", "dr", "evaluate",
    "ips", "load_candidate", "open_log", "sndr", "snips", "write_parquet",
]
