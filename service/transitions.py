"""Transitions (s, a, p, r, s', done) of a sequential loop's episodes, from its log.

Each step is a logged decision carrying ``session_id`` and ``step``; an episode is the
run of steps of one session from a step 0 (its id is that step's event id, as in the
``ends`` stream). One JSON object per transition::

    {"session_id", "episode", "step", "event_id",
     "s": context with "_session" (what the policy saw), "actions": [ids], "pmf": [...],
     "a": chosen index, "action": chosen id, "p": its propensity,
     "r": reward, "reward_kind": "reward" | "default",
     "s_next": next step's context or null, "done": bool, "end": "ended" | "expired" | null}

A step becomes a transition once it has its reward and its successor (or the episode
is over: ended by the caller, ``done`` with ``end = "ended"``, or forgotten after the
session TTL, ``end = "expired"``). Steps still waiting for either are counted, not
written. Transitions come out in episode order, steps in order. Pure functions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bandits import dsjson


@dataclass
class Episode:
    """The logged steps of one episode, in order."""

    session_id: str
    episode: str
    steps: list = field(default_factory=list)


@dataclass
class ExportCounts:
    """What an export wrote and what it left for later."""

    episodes: int = 0
    transitions: int = 0
    unrewarded: int = 0   # steps whose reward window is still open
    open_steps: int = 0   # last steps of live episodes (no successor yet)
    gaps: int = 0         # episodes missing logged steps (trimmed by retention)


def episodes(events) -> list:
    """Group logged decisions (log order) into episodes; non-session events are skipped."""
    current: dict = {}
    out = []
    for event in events:
        sid = event.get("session_id")
        if sid is None:
            continue
        ep = current.get(sid)
        if event["step"] == 0 or ep is None:
            ep = current[sid] = Episode(sid, event["EventId"])
            out.append(ep)
        ep.steps.append(event)
    return out


def transitions(eps, rewards: dict, ended: dict, live: set, counts: ExportCounts):
    """Yield the transition records of ``eps``.

    ``rewards``: ``{event id: (reward, kind)}`` (joined); ``ended``: ``{(session id,
    episode id): steps}``; ``live``: ``{(session id, episode id)}`` of episodes whose
    session has not expired yet.
    """
    for ep in eps:
        if [e["step"] for e in ep.steps] != list(range(len(ep.steps))):
            counts.gaps += 1
            continue
        key = (ep.session_id, ep.episode)
        end = "ended" if key in ended else (None if key in live else "expired")
        counts.episodes += 1
        for t, event in enumerate(ep.steps):
            last = t == len(ep.steps) - 1
            if last and end is None:
                counts.open_steps += 1
                continue
            joined = rewards.get(event["EventId"])
            if joined is None:
                counts.unrewarded += 1
                continue
            counts.transitions += 1
            yield record(ep, event, joined, None if last else ep.steps[t + 1], end if last else None)


def record(ep: Episode, event: dict, joined: tuple, successor: dict | None, end: str | None) -> dict:
    """One transition object (see the module docstring)."""
    index, prob = dsjson.chosen(event)
    pmf = [0.0] * len(event["ActionIds"])
    for i, p in zip(event["a"], event["p"]):
        pmf[i - 1] = p
    return {"session_id": ep.session_id, "episode": ep.episode, "step": event["step"],
            "event_id": event["EventId"], "s": dsjson.state(event), "actions": event["ActionIds"],
            "pmf": pmf, "a": index, "action": event["ActionIds"][index], "p": prob,
            "r": joined[0], "reward_kind": joined[1],
            "s_next": None if successor is None else dsjson.state(successor),
            "done": successor is None, "end": end}

