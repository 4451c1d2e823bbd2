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

from .. import promotion
from ..store.stats import COUNTERS, LATENCY_BUCKETS


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
