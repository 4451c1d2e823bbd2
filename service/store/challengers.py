"""The challengers of one loop in Redis: their models, evaluation windows and figures,
and the promotion of one to serve.

The challengers read the joined stream with their own consumer group
(:data:`~service.store.keys.CHALLENGER_GROUP`), so they learn the same events as the
champion in the same order, and a loop without challengers has no group and pays
nothing. :meth:`ChallengerStore.save` writes every challenger's snapshot, reward model,
new window records and figures and acknowledges the entries they hold, in one script:
after a crash the pending entries are exactly the ones no saved challenger learned.

The state hash (:func:`~service.store.keys.challengers`) holds, per challenger
``<name>:snapshot``, ``<name>:spec``, ``<name>:means`` and ``<name>:figures``, and for
the loop ``last_id`` (the last entry saved) and ``epoch``. A promotion
(:meth:`ChallengerStore.promote`) registers the challenger's snapshot as a new version,
moves the serving pointer and the champion learner's head to it, audits it with the
figures it passed the gate on, and empties every window (``epoch`` + 1): from then on
the challengers are judged against the new champion.
"""
from __future__ import annotations

import json

import numpy as np
import redis

from . import keys
from .client import mapped
from .registry import AUDIT_MAXLEN, _TRIM, entry_json, with_snapshots

# KEYS: state, joined, window of each challenger...
# ARGV: epoch, last_id, number of acked ids, acked ids..., then per challenger
#       name, snapshot, spec, means json, figures json, block, blocks to drop
SAVE = """
local reset = (redis.call('HGET', KEYS[1], 'epoch') or '0') ~= ARGV[1]
local n = tonumber(ARGV[3])
for i = 4, 3 + n, 1000 do
  redis.call('XACK', KEYS[2], '@GROUP@', unpack(ARGV, i, math.min(i + 999, 3 + n)))
end
redis.call('HSET', KEYS[1], 'last_id', ARGV[2])
local j = 4 + n
for k = 3, #KEYS do
  local name = ARGV[j]
  redis.call('HSET', KEYS[1], name .. ':snapshot', ARGV[j + 1], name .. ':spec', ARGV[j + 2],
             name .. ':means', ARGV[j + 3])
  if reset then
    redis.call('DEL', KEYS[k])
    redis.call('HDEL', KEYS[1], name .. ':figures')
  else
    redis.call('HSET', KEYS[1], name .. ':figures', ARGV[j + 4])
    local drop = tonumber(ARGV[j + 6])
    if drop > 0 then redis.call('LTRIM', KEYS[k], drop, -1) end
  end
  if #ARGV[j + 5] > 0 then redis.call('RPUSH', KEYS[k], ARGV[j + 5]) end
  j = j + 7
end
if reset then return {'reset', redis.call('HGET', KEYS[1], 'epoch') or '0'} end
return {'ok', ARGV[1]}
""".replace("@GROUP@", keys.CHALLENGER_GROUP)

# KEYS: versions, registry, serving, head, audit, figures, state, joined, window of each
#       challenger..., snapshots...
# ARGV: blob, entry json, snapshot prefix, keep, key name, reason, figures json,
#       challenger, force, spec, policy name, created, bytes, last_id, windows
PROMOTE = _TRIM + """
local before = redis.call('HGET', KEYS[3], 'version') or redis.call('HGET', KEYS[4], 'version') or '0'
if redis.call('HGET', KEYS[3], 'learn') == '0' and ARGV[9] ~= '1' then return {'pinned', 0, tonumber(before)} end
local head = num(redis.call('HGET', KEYS[4], 'version'))
local windows = tonumber(ARGV[15])
if not covered(9 + windows, KEYS[2], ARGV[3], KEYS[1], head) then return {'stale', 0, tonumber(before)} end
local v = next_version(KEYS[1], head)
redis.call('SET', ARGV[3] .. v, ARGV[1])
redis.call('HSET', KEYS[2], v, '{"version":' .. v .. ',"served":true,' .. string.sub(ARGV[2], 2))
redis.call('HSET', KEYS[3], 'version', v, 'learn', '1', 'spec', ARGV[10])
redis.call('HSET', KEYS[4], 'version', v, 'spec', ARGV[10], 'policy', ARGV[11],
           'created', ARGV[12], 'bytes', ARGV[13], 'last_id', ARGV[14])
redis.call('XGROUP', 'SETID', KEYS[8], '@GROUP@', ARGV[14])
redis.call('HINCRBY', KEYS[7], 'epoch', 1)
for k = 9, 8 + windows do redis.call('DEL', KEYS[k]) end
for _, f in ipairs(redis.call('HKEYS', KEYS[7])) do
  if string.sub(f, -8) == ':figures' then redis.call('HDEL', KEYS[7], f) end
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', @MAXLEN@, '*', 'action', 'promote', 'version', v,
           'from', before, 'learn', '1', 'force', ARGV[9], 'key', ARGV[5], 'reason', ARGV[6],
           'challenger', ARGV[8], 'figures', ARGV[7])
trim(KEYS[2], ARGV[3], tonumber(ARGV[4]), v, v, KEYS[6])
return {'ok', v, tonumber(before)}
""".replace("@MAXLEN@", str(AUDIT_MAXLEN)).replace("@GROUP@", keys.LEARNER_GROUP)


def pack(block: np.ndarray) -> bytes:
    """A (m, WIDTH) float64 block of window records as bytes (little-endian)."""
    return np.ascontiguousarray(block, dtype="<f8").tobytes()


def unpack(raw: bytes, width: int) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f8").reshape(-1, width).copy()


class ChallengerStore:
    """Everything challengers ask of Redis for one loop."""

    def __init__(self, client: redis.Redis, loop):
        self.r, self.loop, self.name = client, loop, loop.name
        self.names = [c.name for c in loop.challengers]
        self._save = client.register_script(SAVE)
        self._promote = client.register_script(PROMOTE)

    def _windows(self) -> list:
        return [keys.challenger_window(self.name, c) for c in self.names]

    # -- the learner's side -----------------------------------------------------------
    @mapped
    def join_group(self) -> None:
        try:
            self.r.xgroup_create(keys.joined(self.name), keys.CHALLENGER_GROUP, id="0",
                                 mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @mapped
    def read_joined(self, start: str, count: int) -> list:
        """Up to ``count`` joined entries for the challengers' group (``"0"``: delivered
        but never acknowledged, ``">"``: new)."""
        rows = self.r.xreadgroup(keys.CHALLENGER_GROUP, "learner",
                                 {keys.joined(self.name): start}, count=count)
        return rows[0][1] if rows else []

    @mapped
    def ack(self, ids: list) -> None:
        self.r.xack(keys.joined(self.name), keys.CHALLENGER_GROUP, *ids)

    @mapped
    def load(self, width: int) -> dict:
        """``{"epoch", "last_id", "challengers": {name: {"snapshot", "spec", "means",
        "blocks"}}}`` as saved."""
        state = {k.decode(): v for k, v in self.r.hgetall(keys.challengers(self.name)).items()}
        out = {"epoch": (state.get("epoch") or b"0").decode(),
               "last_id": (state.get("last_id") or b"0-0").decode(), "challengers": {}}
        for name, window in zip(self.names, self._windows()):
            means = state.get(f"{name}:means")
            out["challengers"][name] = {
                "snapshot": state.get(f"{name}:snapshot"),
                "spec": (state.get(f"{name}:spec") or b"").decode(),
                "means": json.loads(means) if means else None,
                "blocks": [unpack(b, width) for b in self.r.lrange(window, 0, -1)]}
        return out

    @mapped
    def save(self, epoch: str, last_id: str, acked: list, parts: list) -> tuple:
        """Save every challenger (``parts``: per challenger in configuration order,
        ``(name, snapshot, spec, means, figures, block bytes, blocks to drop)``) and
        acknowledge ``acked``: ``("ok", epoch)``, or ``("reset", epoch)`` when a
        promotion emptied the windows since ``epoch`` (the snapshots are saved, the
        windows hold only this save's block, no figures are stored)."""
        args = [epoch, last_id, len(acked), *acked]
        for name, blob, spec, means, fig, block, drop in parts:
            args += [name, blob, spec, json.dumps(means), json.dumps(fig), block, drop]
        out = self._save(keys=[keys.challengers(self.name), keys.joined(self.name),
                               *self._windows()], args=args)
        return out[0].decode(), out[1].decode()

    @mapped
    def set_figures(self, figures: dict) -> None:
        """Store figures computed after a reset (outside the save script)."""
        self.r.hset(keys.challengers(self.name),
                    mapping={f"{n}:figures": json.dumps(f) for n, f in figures.items()})

    # -- reads and promotion (API and learner) ------------------------------------------
    @mapped
    def figures(self) -> dict:
        """``{name: figures or None}`` as last saved."""
        if not self.names:
            return {}
        raw = self.r.hmget(keys.challengers(self.name), [f"{n}:figures" for n in self.names])
        return {n: json.loads(v) if v else None for n, v in zip(self.names, raw)}

    @mapped
    def snapshot(self, name: str) -> tuple:
        """``(snapshot bytes or None, spec text, last_id)`` of challenger ``name`` as last
        saved."""
        blob, spec, last = self.r.hmget(keys.challengers(self.name),
                                        [f"{name}:snapshot", f"{name}:spec", "last_id"])
        return blob, (spec or b"").decode(), (last or b"0-0").decode()

    @mapped
    def promote(self, name: str, blob: bytes, entry: dict, key: str, reason: str,
                figures: dict, force: bool, keep: int, last_id: str) -> tuple:
        """Register ``blob`` (challenger ``name``) as a served version, serve it and let
        the champion's learner continue from it after ``last_id`` (the last joined entry
        the snapshot holds: the learner's group is moved there, so entries after it are
        delivered again and learned once by the new champion), audit it with
        ``figures``, empty the windows: ``("ok", version, previous)``, or ``("pinned",
        0, previous)`` for a pinned loop without ``force`` (nothing is written)."""
        n = self.name
        fixed = [keys.versions(n), keys.registry(n), keys.serving(n), keys.model(n), keys.audit(n),
                 keys.figures(n), keys.challengers(n), keys.joined(n), *self._windows()]
        args = [blob, entry_json(entry), keys.model_prefix(n), keep, key, reason,
                json.dumps(figures), name, int(force), entry["spec"], entry["policy"]["name"],
                repr(entry["created"]), entry["bytes"], last_id, len(self.names)]
        out = with_snapshots(self.r, n, lambda snaps: self._promote(keys=fixed + snaps, args=args),
                             lambda out: out[0] == b"stale")
        return out[0].decode(), int(out[1]), int(out[2])
