"""``GET /metrics``: Prometheus text built from the loops' Redis counters.

The counters live in Redis (written by the same Lua scripts that log and join), so
every API worker reports the same totals, however many there are. Rendering uses
``prometheus_client``'s metric families and exposition format.
"""
from __future__ import annotations

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from .. import health, promotion
from ..store.stats import COUNTERS, LATENCY_BUCKETS
from ..store.health import HealthStore

#: The health gauges of every loop (labels ``loop`` and those given), computed over
#: the last :data:`service.health.METRICS_WINDOW` seconds as ``GET
#: /v1/loops/<loop>/health`` computes them: name -> (help, extra labels). A figure
#: that is null there (nothing to divide by) has no sample.
HEALTH_METRICS = {
    "cbserve_health_status": ("0 ok, 1 warn, 2 alert", ()),
    "cbserve_health_reason": ("1 for each reason the status gives, by code and level",
                              ("code", "level")),
    "cbserve_window_decisions": ("Decisions logged in the window", ()),
    "cbserve_window_rewards": ("Rewards joined in the window (default rewards included)", ()),
    "cbserve_window_join_rate": ("Rewards joined / decisions in the window", ()),
    "cbserve_window_default_rate": ("Default rewards / rewards joined in the window", ()),
    "cbserve_window_exploration_share": ("Share of decisions that explored (chose an action "
                                         "below the pmf's largest probability)", ()),
    "cbserve_window_min_propensity": ("Smallest logged propensity of a chosen action", ()),
    "cbserve_window_latency_mean_seconds": ("Mean rank latency in the window", ()),
    "cbserve_window_latency_max_seconds": ("Largest rank latency in the window", ()),
    "cbserve_window_mean_reward": ("Mean joined reward in the window", ()),
    "cbserve_window_reward_low": ("Lower bound of the 95 % interval of the mean reward", ()),
    "cbserve_window_reward_high": ("Upper bound of the 95 % interval of the mean reward", ()),
    "cbserve_previous_window_mean_reward": ("Mean joined reward in the window before", ()),
    "cbserve_previous_window_reward_low": ("Lower bound of the window before's interval", ()),
    "cbserve_previous_window_reward_high": ("Upper bound of the window before's interval", ()),
    "cbserve_window_version_decisions": ("Decisions of a model version in the window", ("version",)),
    "cbserve_window_version_rewards": ("Rewards joined to a version in the window", ("version",)),
    "cbserve_window_version_mean_reward": ("Mean reward of a version in the window", ("version",)),
    "cbserve_window_action_decisions": ("Decisions choosing an action in the window (_other: "
                                        "the ids past health.max_actions)", ("action",)),
    "cbserve_window_action_share": ("Share of the window's decisions choosing an action", ("action",)),
    "cbserve_window_action_mean_reward": ("Mean reward of an action in the window", ("action",)),
    "cbserve_learner_lag": ("Joined events the learner has not learned yet", ()),
    "cbserve_model_staleness_seconds": ("Seconds since the learner last published a model", ()),
    "cbserve_drift_detected": ("1 when a drift detector reports drift", ("kind",)),
}
# (metric, the report's figure) of the loop-level health gauges
_FIGURES = (("cbserve_window_decisions", ("decisions",)), ("cbserve_window_rewards", ("rewards",)),
            ("cbserve_window_join_rate", ("join_rate",)),
            ("cbserve_window_default_rate", ("default_rate",)),
            ("cbserve_window_exploration_share", ("exploration_share",)),
            ("cbserve_window_min_propensity", ("min_propensity",)),
            ("cbserve_window_mean_reward", ("reward", "mean")),
            ("cbserve_window_reward_low", ("reward", "low")),
            ("cbserve_window_reward_high", ("reward", "high")),
            ("cbserve_previous_window_mean_reward", ("previous", "mean")),
            ("cbserve_previous_window_reward_low", ("previous", "low")),
            ("cbserve_previous_window_reward_high", ("previous", "high")),
            ("cbserve_learner_lag", ("learner_lag",)),
            ("cbserve_model_staleness_seconds", ("staleness_s",)))


class LoopsCollector:
    """A prometheus_client collector over every loop's counters and model version."""

    def __init__(self, loops: dict):
        self.loops = loops

    def collect(self):
        counters = {k: CounterMetricFamily(f"cbserve_{k}", c.help, labels=["loop"])
                    for k, c in COUNTERS.items() if c.metric}
        join_rate = GaugeMetricFamily("cbserve_join_rate", "Joined events / decisions", labels=["loop"])
        mean = GaugeMetricFamily("cbserve_mean_reward", "Mean reward of joined events", labels=["loop"])
        version = GaugeMetricFamily("cbserve_model_version", "Model version published", labels=["loop"])
        serving = GaugeMetricFamily("cbserve_serving_version", "Model version the serving pointer names",
                                    labels=["loop"])
        learning = GaugeMetricFamily("cbserve_learning", "1 when the learner learns for the loop, "
                                     "0 when it is pinned", labels=["loop"])
        latency = HistogramMetricFamily("cbserve_rank_latency_seconds",
                                        "Rank latency from request to log write", labels=["loop"])
        for name, service in self.loops.items():
            stats = service.store.stats()
            for key, family in counters.items():
                family.add_metric([name], stats.get(key, 0.0))
            decisions, joined = stats.get("decisions", 0.0), stats.get("joined", 0.0)
            join_rate.add_metric([name], joined / decisions if decisions else 0.0)
            mean.add_metric([name], stats.get("reward_sum", 0.0) / joined if joined else 0.0)
            version.add_metric([name], service.store.model_version())
            pointer = service.registry.serving()
            serving.add_metric([name], int(pointer.get("version", 0)))
            learning.add_metric([name], 0 if pointer.get("learn") == "0" else 1)
            cumulative, buckets = 0.0, []
            for bound in LATENCY_BUCKETS:
                cumulative += stats.get(f"lat_le_{bound:g}", 0.0)
                buckets.append((f"{bound:g}", cumulative))
            buckets.append(("+Inf", cumulative + stats.get("lat_le_inf", 0.0)))
            latency.add_metric([name], buckets, stats.get("latency_sum", 0.0))
        yield from counters.values()
        yield from (join_rate, mean, version, serving, learning, latency)
        yield from challenger_metrics(self.loops)
        yield from health_metrics(self.loops)


def _dig(report: dict, path: tuple):
    for key in path:
        report = report[key]
    return report


def health_metrics(loops: dict) -> list:
    """Every loop's :data:`HEALTH_METRICS`."""
    fam = {name: GaugeMetricFamily(name, text, labels=["loop", *labels])
           for name, (text, labels) in HEALTH_METRICS.items()}
    for name, service in loops.items():
        rep = HealthStore(service.store.r, service.loop).report(health.METRICS_WINDOW)
        fam["cbserve_health_status"].add_metric([name], health.LEVELS.index(rep["status"]))
        for r in rep["reasons"]:
            fam["cbserve_health_reason"].add_metric([name, r["code"], r["level"]], 1)
        for metric, path in _FIGURES:
            value = _dig(rep, path)
            if value is not None:
                fam[metric].add_metric([name], value)
        for key, metric in (("mean", "cbserve_window_latency_mean_seconds"),
                            ("max", "cbserve_window_latency_max_seconds")):
            if rep["latency_ms"][key] is not None:
                fam[metric].add_metric([name], rep["latency_ms"][key] / 1000.0)
        for v in rep["versions"]:
            for key, metric in (("decisions", "cbserve_window_version_decisions"),
                                ("rewards", "cbserve_window_version_rewards"),
                                ("mean", "cbserve_window_version_mean_reward")):
                if v[key] is not None:
                    fam[metric].add_metric([name, str(v["version"])], v[key])
        for a in rep["actions"]:
            for key, metric in (("decisions", "cbserve_window_action_decisions"),
                                ("share", "cbserve_window_action_share"),
                                ("mean", "cbserve_window_action_mean_reward")):
                if a[key] is not None:
                    fam[metric].add_metric([name, a["id"]], a[key])
        codes = {r["code"] for r in rep["reasons"]}
        for kind, code in (("reward", "reward_drift"), ("context", "context_drift"),
                           ("actions", "actions_drift")):
            fam["cbserve_drift_detected"].add_metric([name, kind], int(code in codes))
    return list(fam.values())


def challenger_metrics(loops: dict) -> list:
    """Each challenger's live figures (loops without challengers add nothing)."""
    value = GaugeMetricFamily("cbserve_challenger_value", "A challenger's estimated value over "
                              "the evaluation window", labels=["loop", "challenger", "estimator", "bound"])
    ess = GaugeMetricFamily("cbserve_challenger_ess", "Effective sample size of a challenger's "
                            "importance weights over the window", labels=["loop", "challenger"])
    events = GaugeMetricFamily("cbserve_challenger_events", "Events in a challenger's window",
                               labels=["loop", "challenger"])
    champion = GaugeMetricFamily("cbserve_champion_value", "The serving model's on-policy mean "
                                 "reward over the challengers' window", labels=["loop", "bound"])
    passes = GaugeMetricFamily("cbserve_challenger_gate", "1 when the challenger passes the "
                               "promotion gate", labels=["loop", "challenger"])
    for name, service in loops.items():
        if not service.loop.challengers:
            continue
        report = promotion.report(service)
        for bound, x in (report["champion"] or {}).items():
            if bound in ("value", "low", "high") and x is not None:
                champion.add_metric([name, bound], x)
        for row in report["challengers"]:
            fig = row["figures"]
            if fig is None:
                continue
            for est in ("snips", "dr"):
                for bound, x in fig[est].items():
                    if x is not None:
                        value.add_metric([name, row["name"], est, bound], x)
            ess.add_metric([name, row["name"]], fig["ess"])
            events.add_metric([name, row["name"]], fig["n"])
            passes.add_metric([name, row["name"]], 1 if row["gate"]["passes"] else 0)
    return [value, ess, events, champion, passes]


def render(loops: dict) -> bytes:
    """The Prometheus exposition text for these loops."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoopsCollector(loops))
    return generate_latest(registry)
