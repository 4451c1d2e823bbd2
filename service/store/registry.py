"""The model registry of one loop: its versions, the serving pointer, the audit stream.

Every version a loop serves or could serve is one entry of the registry hash
(:func:`~service.store.keys.registry`, version -> JSON metadata) beside its snapshot
(:func:`~service.store.keys.model_version`). Version numbers come from one counter per
loop (:func:`~service.store.keys.versions`), so learner publications and uploads never
share a number. Workers serve the serving pointer (:func:`~service.store.keys.serving`),
not the latest version: a deploy moves it, and with ``learn = 0`` (a pin) the learner
publishes nothing for the loop. Each of publish, deploy and upload is one Lua script, so
two deploys racing both land in the audit stream and the pointer is the last one's.
Entries beyond ``models.keep`` are dropped oldest first, never the serving version nor
the learner's head (the version it learns from), with their snapshots and live figures.

The live figures of each version (:func:`~service.store.keys.figures`: decisions
served, rewards joined, their sum and sum of squares) are counted by the API's own
scripts (:mod:`service.store.lua`); :meth:`Registry.figures` reads them.
"""
from __future__ import annotations

import json

import redis

from . import keys
from .client import mapped

#: Entries the audit stream keeps (approximately: ``MAXLEN ~``).
AUDIT_MAXLEN = 10_000

#: Lua functions for a script that adds a version (prepend it to the script's text):
#: ``trim(reg, prefix, keep, a, b, figures)`` drops the oldest entries of the registry
#: hash ``reg`` until at most ``keep`` remain, never versions ``a`` nor ``b`` (the
#: serving one and the learner's head), each with its snapshot (key ``prefix .. v``)
#: and its four fields of the ``figures`` hash. ``next_version(counter, head)`` gives the
#: next version number; ``num(x)`` reads a number, 0 when absent. The snapshot keys
#: (``prefix .. v``) are declared in KEYS from ``first`` on (:func:`snapshot_keys`:
#: every kept version's and the next one's, read just before the call);
#: ``covered(first, reg, prefix, counter, head)`` checks that they still are, before the
#: script writes anything (a concurrent publication or upload may have added one since:
#: the script then returns ``{'stale'}`` and the caller reads them again).
_TRIM = """
local function num(x) return tonumber(x or '0') or 0 end
local function covered(first, reg, prefix, counter, head)
  local declared = {}
  for i = first, #KEYS do declared[KEYS[i]] = true end
  local v = num(redis.call('GET', counter)) + 1
  if v <= head then v = head + 1 end
  if not declared[prefix .. v] then return false end
  for _, x in ipairs(redis.call('HKEYS', reg)) do
    if not declared[prefix .. x] then return false end
  end
  return true
end
local function trim(reg, prefix, keep, a, b, figures)
  local n = redis.call('HLEN', reg)
  if n <= keep then return end
  local nums = {}
  for _, s in ipairs(redis.call('HKEYS', reg)) do nums[#nums + 1] = tonumber(s) end
  table.sort(nums)
  for _, x in ipairs(nums) do
    if n <= keep then return end
    if x ~= a and x ~= b then
      redis.call('HDEL', reg, x)
      redis.call('DEL', prefix .. x)
      redis.call('HDEL', figures, x .. ':d', x .. ':n', x .. ':s', x .. ':q')
      n = n - 1
    end
  end
end
local function next_version(counter, head)
  local v = redis.call('INCR', counter)
  if v <= head then v = head + 1; redis.call('SET', counter, v) end
  return v
end
"""

# KEYS: head, versions, registry, serving, joined, stats, figures, drift, snapshots...
# ARGV: parent, blob, entry json, last_id, spec, policy, created, bytes, keep, prefix,
#       learned, n, n/2 drift field-value pairs (n values), acked ids...
PUBLISH = _TRIM + """
local head = num(redis.call('HGET', KEYS[1], 'version'))
if head ~= tonumber(ARGV[1]) then return {'moved', head} end
if redis.call('HGET', KEYS[4], 'learn') == '0' then return {'pinned', head} end
if not covered(9, KEYS[3], ARGV[10], KEYS[2], head) then return {'stale', head} end
local v = next_version(KEYS[2], head)
redis.call('SET', ARGV[10] .. v, ARGV[2])
redis.call('HSET', KEYS[3], v, '{"version":' .. v .. ',"served":true,' .. string.sub(ARGV[3], 2))
redis.call('HSET', KEYS[1], 'version', v, 'last_id', ARGV[4], 'spec', ARGV[5],
           'policy', ARGV[6], 'created', ARGV[7], 'bytes', ARGV[8])
redis.call('HSET', KEYS[4], 'version', v, 'learn', '1', 'spec', ARGV[5])
local nd = tonumber(ARGV[12])
if nd > 0 then redis.call('HSET', KEYS[8], unpack(ARGV, 13, 12 + nd)) end
for i = 13 + nd, #ARGV, 1000 do
  redis.call('XACK', KEYS[5], '@GROUP@', unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HINCRBY', KEYS[6], 'learned', ARGV[11])
trim(KEYS[3], ARGV[10], tonumber(ARGV[9]), v, v, KEYS[7])
return {'ok', v}
""".replace("@GROUP@", keys.LEARNER_GROUP)

# KEYS: registry, serving, head, audit
# ARGV: version, learn (1|0), force (1|0), key name, reason, maxlen, figures json
DEPLOY = """
local before = redis.call('HGET', KEYS[2], 'version') or redis.call('HGET', KEYS[3], 'version') or '0'
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {'unknown', before} end
local e = cjson.decode(raw)
local function audit(action)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'action', action, 'version', ARGV[1],
             'from', before, 'learn', ARGV[2], 'force', ARGV[3], 'key', ARGV[4], 'reason', ARGV[5],
             'figures', ARGV[7])
end
if not e['served'] and ARGV[3] ~= '1' then audit('refused'); return {'gate', before} end
if not e['served'] then
  redis.call('HSET', KEYS[1], ARGV[1], (string.gsub(raw, '"served":false', '"served":true', 1)))
end
redis.call('HSET', KEYS[2], 'version', ARGV[1], 'learn', ARGV[2], 'spec', e['spec'])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[3], 'version', ARGV[1], 'spec', e['spec'], 'policy', e['policy']['name'],
             'created', tostring(e['created']), 'bytes', tostring(e['bytes']))
end
if ARGV[2] == '1' then audit('deploy') else audit('pin') end
return {'ok', before}
"""

# KEYS: versions, registry, audit, serving, head, figures, snapshots...
# ARGV: blob, entry json, prefix, keep, key name, reason, maxlen
UPLOAD = _TRIM + """
local head = num(redis.call('HGET', KEYS[5], 'version'))
if not covered(7, KEYS[2], ARGV[3], KEYS[1], head) then return -1 end
local v = next_version(KEYS[1], head)
redis.call('SET', ARGV[3] .. v, ARGV[1])
redis.call('HSET', KEYS[2], v, '{"version":' .. v .. ',"served":false,' .. string.sub(ARGV[2], 2))
trim(KEYS[2], ARGV[3], tonumber(ARGV[4]), num(redis.call('HGET', KEYS[4], 'version')), head, KEYS[6])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'action', 'upload', 'version', v,
           'from', '', 'learn', '', 'force', '', 'key', ARGV[5], 'reason', ARGV[6])
return v
"""


#: Times a script that adds a version is called again when a concurrent one added a
#: version between the read of its snapshot keys and the call.
STALE_RETRIES = 10


def snapshot_keys(client, name: str) -> list:
    """The snapshot keys a script that adds a version may touch (:data:`_TRIM`): every
    version kept in the registry, and the next version (one round trip)."""
    pipe = client.pipeline(transaction=False)
    pipe.hkeys(keys.registry(name))
    pipe.get(keys.versions(name))
    pipe.hget(keys.model(name), "version")
    kept, counter, head = pipe.execute()
    nxt = max(int(counter or 0), int(head or 0)) + 1
    return [keys.model_version(name, int(v)) for v in kept] + [keys.model_version(name, nxt)]


def with_snapshots(client, name: str, call, stale) -> object:
    """``call(snapshot keys)`` until ``stale(its result)`` is false (at most
    :data:`STALE_RETRIES` more times; then :class:`redis.ResponseError`)."""
    for _ in range(STALE_RETRIES + 1):
        out = call(snapshot_keys(client, name))
        if not stale(out):
            return out
    raise redis.ResponseError(f"loop {name!r}: versions kept being added during the call")


def entry_json(fields: dict) -> str:
    """The JSON text of a registry entry without ``version`` and ``served`` (the scripts
    prepend both)."""
    return json.dumps(fields, separators=(",", ":"), default=str)


class Registry:
    """The registry, serving pointer and audit stream of one loop: ``Registry(client, name)``."""

    def __init__(self, client: redis.Redis, name: str, keep: int):
        self.r, self.name, self.keep = client, name, keep
        self._publish = client.register_script(PUBLISH)
        self._deploy = client.register_script(DEPLOY)
        self._upload = client.register_script(UPLOAD)

    # -- reads ------------------------------------------------------------------------
    @mapped
    def serving(self) -> dict:
        """The serving pointer ``{"version", "learn", "spec"}``; before the first
        publication or deploy, the learner's head (what an older deployment served)."""
        raw = self.r.hgetall(keys.serving(self.name)) or self.r.hgetall(keys.model(self.name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    @mapped
    def entries(self) -> list:
        """Every kept version's metadata, oldest first."""
        raw = self.r.hgetall(keys.registry(self.name))
        return sorted((json.loads(v) for v in raw.values()), key=lambda e: e["version"])

    @mapped
    def entry(self, version: int) -> dict | None:
        raw = self.r.hget(keys.registry(self.name), version)
        return None if raw is None else json.loads(raw)

    @mapped
    def figures(self, versions) -> dict:
        """The live figures of each of ``versions``: ``{version: (decisions, rewards,
        reward sum, sum of squared rewards)}``, zeros for a version with none yet."""
        versions = list(versions)
        if not versions:
            return {}
        fields = [f for v in versions for f in keys.figure_fields(v)]
        raw = self.r.hmget(keys.figures(self.name), fields)
        out = {}
        for i, v in enumerate(versions):
            d, n, s, q = raw[4 * i:4 * i + 4]
            out[v] = (int(d or 0), int(n or 0), float(s or 0), float(q or 0))
        return out

    @mapped
    def audit(self, count: int) -> list:
        """The newest ``count`` audit entries, newest first: ``(stream id, fields)``."""
        rows = self.r.xrevrange(keys.audit(self.name), count=count)
        return [(sid.decode(), {k.decode(): v.decode() for k, v in f.items()}) for sid, f in rows]

    # -- writes -----------------------------------------------------------------------
    @mapped
    def publish(self, parent: int, blob: bytes, entry: dict, head: dict, acked: list,
                learned: int, drift: dict | None = None) -> tuple:
        """Register the learner's next version (parent ``parent``), make it the head and,
        unless the loop is pinned, the serving version; acknowledge ``acked``, count
        ``learned`` and write the ``drift`` fields (the detectors' state after these
        events, :mod:`service.drift_learner`), all at once. ``("ok", version)``, or
        ``("moved", head)`` when the head is no longer ``parent`` (a deploy),
        ``("pinned", head)`` when pinned: nothing is written then."""
        n = self.name
        pairs = [x for item in (drift or {}).items() for x in item]
        args = [parent, blob, entry_json(entry), head["last_id"], head["spec"], head["policy"],
                head["created"], head["bytes"], self.keep, keys.model_prefix(n), learned,
                len(pairs), *pairs, *acked]
        fixed = [keys.model(n), keys.versions(n), keys.registry(n), keys.serving(n),
                 keys.joined(n), keys.stats(n), keys.figures(n), keys.drift(n)]
        out = with_snapshots(self.r, n, lambda snaps: self._publish(keys=fixed + snaps, args=args),
                             lambda out: out[0] == b"stale")
        return out[0].decode(), int(out[1])

    @mapped
    def deploy(self, version: int, learn: bool, force: bool, key: str, reason: str,
               figures: str = "{}") -> tuple:
        """Move the serving pointer to ``version`` (and, with ``learn``, the learner's head)
        and audit it with ``figures`` (JSON: what the deploy was decided on):
        ``(status, previous serving version)``, status ``ok``, ``unknown`` or ``gate`` (a
        version that never served, without ``force``; audited as refused)."""
        n = self.name
        out = self._deploy(keys=[keys.registry(n), keys.serving(n), keys.model(n), keys.audit(n)],
                           args=[version, int(learn), int(force), key, reason, AUDIT_MAXLEN,
                                 figures])
        return out[0].decode(), int(out[1])

    @mapped
    def refuse(self, version: int | None, key: str, reason: str, figures: str = "") -> None:
        """Audit a deploy of ``version`` that a pre-deployment check refused, or (version
        None) a promotion the gate or a check refused, with the ``figures`` (JSON) it was
        judged on."""
        fields = {"action": "refused", "version": "" if version is None else version, "from": "",
                  "learn": "", "force": "", "key": key, "reason": reason}
        if figures:
            fields["figures"] = figures
        self.r.xadd(keys.audit(self.name), fields, maxlen=AUDIT_MAXLEN, approximate=True)

    @mapped
    def note(self, action: str, key: str, reason: str, figures: dict, version="") -> None:
        """Audit what the learner decided by itself (``action`` ``drift``: a detection,
        ``correction``: what it did about it), with the ``figures`` it decided on."""
        fields = {"action": action, "version": version, "from": "", "learn": "", "force": "",
                  "key": key, "reason": reason,
                  "figures": json.dumps(figures, separators=(",", ":"), default=str)}
        self.r.xadd(keys.audit(self.name), fields, maxlen=AUDIT_MAXLEN, approximate=True)

    @mapped
    def drift_fields(self) -> dict:
        """The loop's drift hash (:func:`~service.store.keys.drift`), raw bytes by field."""
        return {k.decode(): v for k, v in self.r.hgetall(keys.drift(self.name)).items()}

    @mapped
    def set_drift(self, fields: dict) -> None:
        """Write fields of the loop's drift hash."""
        self.r.hset(keys.drift(self.name), mapping=fields)

    @mapped
    def raise_floor(self, epsilon: float, until: int, correction: str) -> None:
        """Raise the exploration floor of every worker to ``epsilon`` until the loop's
        ``decisions`` counter reaches ``until`` (serving pointer fields ``explore`` and
        ``explore_until``), and record ``correction`` (JSON) in the drift hash: at once."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.serving(self.name), mapping={"explore": repr(float(epsilon)),
                                                    "explore_until": int(until)})
        pipe.hset(keys.drift(self.name), "correction", correction)
        pipe.execute()

    @mapped
    def end_floor(self, correction: str) -> None:
        """Drop the exploration floor from the serving pointer; record ``correction``."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(keys.serving(self.name), "explore", "explore_until")
        pipe.hset(keys.drift(self.name), "correction", correction)
        pipe.execute()

    @mapped
    def pointer_and_decisions(self) -> tuple:
        """``(serving pointer as :meth:`serving` reads it, the loop's decisions counter)``
        in one round trip (what a worker reads every :data:`service.models.REFRESH_S`)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.serving(self.name))
        pipe.hgetall(keys.model(self.name))
        pipe.hget(keys.stats(self.name), "decisions")
        serving, head, decisions = pipe.execute()
        raw = serving or head
        return {k.decode(): v.decode() for k, v in raw.items()}, int(decisions or 0)

    @mapped
    def upload(self, blob: bytes, entry: dict, key: str, reason: str) -> int:
        """Register an uploaded snapshot (never served until deployed); its version."""
        n = self.name
        fixed = [keys.versions(n), keys.registry(n), keys.audit(n), keys.serving(n), keys.model(n),
                 keys.figures(n)]
        args = [blob, entry_json(entry), keys.model_prefix(n), self.keep, key, reason, AUDIT_MAXLEN]
        return int(with_snapshots(self.r, n, lambda snaps: self._upload(keys=fixed + snaps, args=args),
                                  lambda out: int(out) < 0))
