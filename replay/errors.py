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


class EventError(ReplayError):
    """One logged event is not evaluated: a reader counts it by kind and reads on."""


class BadEvent(EventError, ValueError):
    """One logged event cannot be used; the message names the field."""


class Unrewarded(EventError):
    """The event has no reward (yet): skipped and counted."""


class SkipLearn(EventError):
    """The event says ``"_skipLearn": true`` (e.g. a deferred decision never activated)."""


class Unsupported(EventError):
    """The event is of a kind this reader does not evaluate; the message says which."""


class ReplayWarning(UserWarning):
    """An estimate is valid but fragile: tiny propensities, or target mass the logger
    never (or hardly ever) explored."""
