"""Errors and warnings of the replay package (one family, one base class)."""
from __future__ import annotations


class ReplayError(Exception):
    """Base of every error raised by :mod:`replay`."""


class EstimatorError(ReplayError, ValueError):
    """Arrays given to an estimator are missing, misshapen or out of range."""


class LogError(ReplayError):
    """A log source cannot be opened or read at all (a bad line is counted, not raised)."""


class CandidateError(ReplayError):
    """A candidate policy file is invalid; the message names the file and the key."""


class ReplayWarning(UserWarning):
    """An estimate is valid but fragile: tiny propensities, or target mass the logger
    never (or hardly ever) explored."""
