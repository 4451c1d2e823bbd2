"""cbserve's decision math: featurizers, policies and exploration.

Every policy has the same verbs: ``decide(context, actions) -> Decision`` (a pmf
over the actions, plus scores), ``learn(feedback_batch)``, and ``to_bytes()`` /
``from_bytes(b)`` snapshots. :func:`sample_index` is the one place an action is
drawn from a pmf. No I/O lives here.
"""
from .base import Policy
from .epsilon_greedy import EpsilonGreedy
from .errors import BanditError, ConfigError, FeatureError, SnapshotError, VWError
from .exploration import greedy_pmf, sample_index
from .featurizer import Featurizer, Features, make_featurizer
from .lints import LinTS
from .linucb import LinUCB
from .registry import BUILTINS, load_policy, make_policy, resolve
from .types import Decision, Feedback

__all__ = [
    "BUILTINS", "BanditError", "ConfigError", "Decision", "EpsilonGreedy", "FeatureError",
    "Featurizer", "Features", "Feedback", "LinTS", "LinUCB", "Policy", "SnapshotError",
    "VWError", "greedy_pmf", "load_policy", "make_featurizer", "make_policy", "resolve",
    "sample_index",
]
