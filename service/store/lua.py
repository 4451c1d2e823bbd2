"""The Lua scripts that make logging and the reward join atomic across processes.

Each runs as one Redis command, so however many API workers race on one event, exactly
one reward is accepted and the event is joined (handed to the learner) exactly once.
Time is Redis's own clock (``TIME``), the same for every host. Every script declares
in KEYS every key it touches (all under the loop's hash tag), as a Redis Cluster
requires: a key known only from a stored field (an event's session) is returned to
the caller, which calls again with it declared.

Event hash fields: ``st`` open | joined | expired; ``act`` 1 when the event may be
learned (0 for a deferred event until it is activated); ``dl`` reward deadline (ms);
``sid`` id of the decision in the log stream; ``r`` the reward given by the caller;
``v`` the model version that made the decision; ``aid`` the chosen action's id; for a
multi-slot decision ``sl`` its slot ids (space separated, in order; ``aid`` is the first
slot's choice), ``r:<slot>`` a slot's reward and ``nj`` the slots joined so far.

The live figures of each version (:func:`~service.store.keys.figures`) are counted
here too, in the same scripts: ``<v>:d`` when a decision of version v is logged,
``<v>:n``, ``<v>:s`` and ``<v>:q`` (count, sum and sum of squares of the rewards) when
one of its events is joined, with the caller's reward or the default one. An event
logged without ``v`` counts for no version.

So are the loop's health figures: each script that logs or joins also writes the
health bucket of the current minute (:func:`~service.store.keys.bucket`, last of its
KEYS; the caller names the minute from its clock), which expires ``health.retention``
after it was created. Its fields (:mod:`service.health` reads them): on the rank path
``d`` decisions, ``df`` deferred ones, ``x`` explored ones (chosen ≠ the pmf's
argmax), ``p`` the smallest propensity of a chosen action, ``lu`` and ``lx`` the sum
and maximum of the latencies (integer microseconds), ``vd:<v>`` decisions of version v,
``ad:<id>`` decisions of action id; on the join path ``n`` rewards joined, ``nd`` of
them default rewards, ``ac`` deferred events activated, ``s`` and ``q`` the sum and
sum of squares of the joined rewards, ``vn:<v>``, ``vs:<v>``, ``vq:<v>`` the same per
version and ``an:<id>``, ``as:<id>`` per action. A bucket tracks at most
``health.max_actions`` action ids (``na`` counts those it has seen): the others are
counted under the id ``_other``.
"""

_PRELUDE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# bucket_action(bucket, action id, cap): the field suffix the action counts under in the
# health bucket: its id while the bucket tracks it or still has room (then tracked from
# now on, ``ad:<id>`` present), '_other' once ``cap`` ids are tracked
_BUCKET_ACTION = """
local function bucket_action(b, aid, cap)
  if redis.call('HEXISTS', b, 'ad:' .. aid) == 1 then return aid end
  if redis.call('HINCRBY', b, 'na', 1) > cap then return '_other' end
  redis.call('HSET', b, 'ad:' .. aid, 0)
  return aid
end
"""

# join(event key, joined stream, due zset, stats, figures, event id, decision id, reward,
#      kind, retention ms, H): hands the event to the learner; count_join counts the reward
#      in the stats, the figures of the event's version and the health bucket
#      H = {key, ttl s, max actions}. A multi-slot event (field ``sl``: its slot ids, space
#      separated) is joined slot by slot, join_slot(…, slot ids, slot, …): an entry per
#      slot (``sl`` its id); the first slot's reward is the event's in the stats, figures
#      and bucket; the event is ``joined`` once every slot is (``nj`` slots joined).
_JOIN = _BUCKET_ACTION + """
local function count_join(ev, stats, figures, value, kind, H)
  redis.call('HINCRBY', stats, 'joined', 1)
  redis.call('HINCRBYFLOAT', stats, 'reward_sum', value)
  local e = redis.call('HMGET', ev, 'v', 'aid')
  local v, x = e[1], tonumber(value)
  local sq = string.format('%.17g', x * x)
  if v then
    redis.call('HINCRBY', figures, v .. ':n', 1)
    redis.call('HINCRBYFLOAT', figures, v .. ':s', value)
    redis.call('HINCRBYFLOAT', figures, v .. ':q', sq)
  end
  local b = H[1]
  if redis.call('HINCRBY', b, 'n', 1) == 1 then redis.call('EXPIRE', b, H[2]) end
  if kind == 'default' then redis.call('HINCRBY', b, 'nd', 1) end
  redis.call('HINCRBYFLOAT', b, 's', value)
  redis.call('HINCRBYFLOAT', b, 'q', sq)
  if v then
    redis.call('HINCRBY', b, 'vn:' .. v, 1)
    redis.call('HINCRBYFLOAT', b, 'vs:' .. v, value)
    redis.call('HINCRBYFLOAT', b, 'vq:' .. v, sq)
  end
  if e[2] then
    local a = bucket_action(b, e[2], H[3])
    redis.call('HINCRBY', b, 'an:' .. a, 1)
    redis.call('HINCRBYFLOAT', b, 'as:' .. a, value)
  end
end
local function join(ev, stream, due, stats, figures, id, sid, value, kind, retention, H)
  redis.call('HSET', ev, 'st', 'joined')
  redis.call('XADD', stream, 'MINID', '~', now - retention, '*', 'e', id, 's', sid, 'r', value, 'k', kind)
  redis.call('ZREM', due, id)
  count_join(ev, stats, figures, value, kind, H)
end
local function slot_ids(text)
  local out = {}
  for s in string.gmatch(text, '%S+') do out[#out + 1] = s end
  return out
end
local function join_slot(ev, stream, due, stats, figures, id, sid, slots, slot, value, kind, retention, H)
  redis.call('XADD', stream, 'MINID', '~', now - retention, '*', 'e', id, 's', sid, 'r', value, 'k', kind,
             'sl', slot)
  redis.call('HINCRBY', stats, 'slot_joins', 1)
  if slot == slots[1] then count_join(ev, stats, figures, value, kind, H) end
  if redis.call('HINCRBY', ev, 'nj', 1) >= #slots then
    redis.call('HSET', ev, 'st', 'joined')
    redis.call('ZREM', due, id)
  end
end
"""

# the decision of LOG_DECISION and LOG_STEP; ``figures`` and the health bucket are
# their last two keys. Bucket: one HMGET and at most one HSET for the minimum
# propensity and maximum latency; an action already tracked costs one HINCRBY.
_LOG = """
local deadline = now + tonumber(ARGV[4])
local sid = redis.call('XADD', KEYS[2], 'MINID', '~', now - tonumber(ARGV[6]), '*', 'j', ARGV[2])
local active = '1'
if ARGV[3] == '1' then active = '0' end
redis.call('HSET', KEYS[1], 'st', 'open', 'act', active, 'dl', deadline, 'sid', sid, 'v', ARGV[9], 'aid', ARGV[10])
redis.call('HINCRBY', KEYS[#KEYS - 1], ARGV[9] .. ':d', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
redis.call('HINCRBY', KEYS[4], 'decisions', 1)
if active == '0' then redis.call('HINCRBY', KEYS[4], 'deferred', 1) end
redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
redis.call('HINCRBYFLOAT', KEYS[4], 'latency_sum', ARGV[8])
local b = KEYS[#KEYS]
if redis.call('HINCRBY', b, 'd', 1) == 1 then redis.call('EXPIRE', b, tonumber(ARGV[13])) end
if active == '0' then redis.call('HINCRBY', b, 'df', 1) end
if ARGV[11] == '1' then redis.call('HINCRBY', b, 'x', 1) end
local us = math.floor(tonumber(ARGV[8]) * 1e6 + 0.5)
local m = redis.call('HMGET', b, 'p', 'lx')
local low, slow = not m[1] or tonumber(ARGV[12]) < tonumber(m[1]), not m[2] or us > tonumber(m[2])
if low and slow then redis.call('HSET', b, 'p', ARGV[12], 'lx', us)
elseif low then redis.call('HSET', b, 'p', ARGV[12])
elseif slow then redis.call('HSET', b, 'lx', us) end
redis.call('HINCRBY', b, 'lu', us)
redis.call('HINCRBY', b, 'vd:' .. ARGV[9], 1)
if redis.call('HINCRBY', b, 'ad:' .. ARGV[10], 1) == 1 and redis.call('HINCRBY', b, 'na', 1) > tonumber(ARGV[14]) then
  redis.call('HDEL', b, 'ad:' .. ARGV[10])
  redis.call('HINCRBY', b, 'ad:_other', 1)
end
"""
_UNUSED_ID = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'dup'} end
"""

#: KEYS: event, log, due, stats, figures, health bucket. ARGV: event id, DSJSON, deferred
#: (0/1), wait ms, event ttl s, retention ms, latency bucket field, latency seconds, model
#: version, chosen action id, explored (0/1), propensity of the chosen action, bucket
#: ttl s, actions a bucket tracks at most, slot ids of a multi-slot decision (space
#: separated; '' for one decision).
#: Returns {'ok', log entry id}, or {'dup'} when the event id is already in use.
LOG_DECISION = _PRELUDE + _UNUSED_ID + _LOG + """
if ARGV[15] ~= '' then redis.call('HSET', KEYS[1], 'sl', ARGV[15]) end
return {'ok', sid}
"""

#: A step of a session (sequential loops): KEYS: event, log, due, stats, session,
#: figures, health bucket; ARGV: LOG_DECISION's plus step expected, session ttl ms,
#: steps kept, session id.
#: The step is logged only if the session is at that step (an ended session starts
#: a new episode at step 0); it then records the action, moves the session on and
#: renews its TTL. Session hash fields:
#: ``id``, ``ep`` (episode: event id of its first step), ``n`` steps taken, ``a:<i>``
#: and ``r:<i>`` action and reward of step i (the last ``steps kept`` only), ``end``.
#: Returns {'ok', entry id} | {'dup'} | {'step', current step}.
LOG_STEP = _PRELUDE + _UNUSED_ID + """
local s = redis.call('HMGET', KEYS[5], 'n', 'end', 'ep')
local n, cur, ep = tonumber(ARGV[15]), s[1] or '0', s[3] or ARGV[1]
if s[2] then cur, ep = '0', ARGV[1] end
if tonumber(cur) ~= n then return {'step', cur} end
if s[2] then redis.call('DEL', KEYS[5]) end
""" + _LOG + """
redis.call('HSET', KEYS[5], 'id', ARGV[18], 'ep', ep, 'n', n + 1, 'a:' .. n, ARGV[10])
local old = n - tonumber(ARGV[17])
if old >= 0 then redis.call('HDEL', KEYS[5], 'a:' .. old, 'r:' .. old) end
redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[16]))
redis.call('HSET', KEYS[1], 'sk', KEYS[5], 'sx', n, 'ep', ep)
if n == 0 then redis.call('HINCRBY', KEYS[4], 'sessions', 1) end
return {'ok', sid}
"""

# end_session(session key, ends stream, stats, retention ms): {status, steps}
_END = """
local function end_session(sk, ends, stats, retention)
  local s = redis.call('HMGET', sk, 'n', 'end', 'id', 'ep')
  if not s[1] then return {'unknown'} end
  if s[2] then return {'same', s[1]} end
  redis.call('HSET', sk, 'end', '1')
  redis.call('XADD', ends, 'MINID', '~', now - retention, '*', 'id', s[3], 'ep', s[4], 'n', s[1])
  redis.call('HINCRBY', stats, 'sessions_ended', 1)
  return {'ok', s[1]}
end
"""

#: KEYS: session, ends, stats. ARGV: retention ms. Closes the episode (idempotent).
#: Returns {ok | same, steps} or {unknown}.
END_SESSION = _PRELUDE + _END + "return end_session(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]))"

#: KEYS: event, joined, due, stats, ends, figures, health bucket, and the session of the
#: event when the caller knows it. ARGV: event id, reward (canonical text), retention ms,
#: end ('1': also close the event's session), bucket ttl s, actions a bucket tracks at
#: most. A step's reward is also written into its session (if that episode is still
#: live), for the next state.
#: Returns {status[, stored reward]}: ok | same | conflict | gone | unknown | nosession, or
#: {slots, slot ids} for a multi-slot event (REWARD_SLOTS rewards those), or {session,
#: session key} for a step of a session not named in KEYS (nothing is written: the
#: caller calls again with it, so the script touches only the keys it declares).
REWARD = _PRELUDE + _JOIN + _END + """
local h = redis.call('HMGET', KEYS[1], 'st', 'r', 'dl', 'act', 'sid', 'sk', 'sx', 'ep', 'sl')
if not h[1] then return {'unknown'} end
if h[9] then return {'slots', h[9]} end
if h[6] and h[6] ~= KEYS[8] then return {'session', h[6]} end
if ARGV[4] == '1' and not h[6] then return {'nosession'} end
if h[2] then
  if h[2] == ARGV[2] then
    if ARGV[4] == '1' then end_session(h[6], KEYS[5], KEYS[4], tonumber(ARGV[3])) end
    return {'same'}
  end
  return {'conflict', h[2]}
end
if h[1] ~= 'open' or tonumber(h[3]) < now then return {'gone'} end
redis.call('HSET', KEYS[1], 'r', ARGV[2])
if h[6] and redis.call('HGET', h[6], 'ep') == h[8] and redis.call('HEXISTS', h[6], 'a:' .. h[7]) == 1 then
  redis.call('HSET', h[6], 'r:' .. h[7], ARGV[2])
end
if ARGV[4] == '1' then end_session(h[6], KEYS[5], KEYS[4], tonumber(ARGV[3])) end
redis.call('HINCRBY', KEYS[4], 'rewards', 1)
if h[4] == '1' then
  join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], ARGV[1], h[5], ARGV[2], 'reward', tonumber(ARGV[3]),
       {KEYS[7], tonumber(ARGV[5]), tonumber(ARGV[6])})
end
return {'ok'}
"""

#: KEYS: event, joined, due, stats, figures, health bucket. ARGV: event id, retention ms,
#: bucket ttl s, actions a bucket tracks at most.
#: Returns {status}: ok | same (already active) | gone | unknown.
ACTIVATE = _PRELUDE + _JOIN + """
local h = redis.call('HMGET', KEYS[1], 'st', 'r', 'dl', 'act', 'sid', 'sl')
if not h[1] then return {'unknown'} end
if h[4] == '1' then return {'same'} end
if h[1] ~= 'open' or tonumber(h[3]) < now then return {'gone'} end
redis.call('HSET', KEYS[1], 'act', '1')
redis.call('HINCRBY', KEYS[4], 'activated', 1)
if redis.call('HINCRBY', KEYS[6], 'ac', 1) == 1 then redis.call('EXPIRE', KEYS[6], tonumber(ARGV[3])) end
if h[6] then
  local slots = slot_ids(h[6])
  for _, slot in ipairs(slots) do
    local r = redis.call('HGET', KEYS[1], 'r:' .. slot)
    if r then
      join_slot(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], h[5], slots, slot, r, 'reward',
                tonumber(ARGV[2]), {KEYS[6], tonumber(ARGV[3]), tonumber(ARGV[4])})
    end
  end
elseif h[2] then
  join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], h[5], h[2], 'reward', tonumber(ARGV[2]),
       {KEYS[6], tonumber(ARGV[3]), tonumber(ARGV[4])})
end
return {'ok'}
"""

#: KEYS: event, joined, due, stats, figures, health bucket. ARGV: event id, retention ms,
#: bucket ttl s, actions a bucket tracks at most, then slot id and reward (canonical text)
#: pairs. Rewards slots of a multi-slot event: every slot is checked before any is written
#: (a request is accepted or refused whole); slots already holding the same reward are
#: left alone. An active event's slots are joined at once, a deferred one's on activation.
#: Returns {ok} | {same} | {conflict, slot, stored reward} | {noslot, slot, slot ids} |
#: {noslots} (a single decision) | {gone} | {unknown}.
REWARD_SLOTS = _PRELUDE + _JOIN + """
local h = redis.call('HMGET', KEYS[1], 'st', 'dl', 'act', 'sid', 'sl')
if not h[1] then return {'unknown'} end
if not h[5] then return {'noslots'} end
local slots, known, new = slot_ids(h[5]), {}, {}
for _, slot in ipairs(slots) do known[slot] = true end
for i = 5, #ARGV, 2 do
  if not known[ARGV[i]] then return {'noslot', ARGV[i], h[5]} end
end
for i = 5, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], 'r:' .. ARGV[i])
  if not cur then new[#new + 1] = i
  elseif cur ~= ARGV[i + 1] then return {'conflict', ARGV[i], cur} end
end
if #new == 0 then return {'same'} end
if h[1] ~= 'open' or tonumber(h[2]) < now then return {'gone'} end
local H = {KEYS[6], tonumber(ARGV[3]), tonumber(ARGV[4])}
for _, i in ipairs(new) do
  redis.call('HSET', KEYS[1], 'r:' .. ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[4], 'rewards', 1)
  if h[3] == '1' then
    join_slot(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], h[4], slots, ARGV[i], ARGV[i + 1],
              'reward', tonumber(ARGV[2]), H)
  end
end
return {'ok'}
"""

#: KEYS: due, joined, stats, figures, health bucket, then the event of each id of ARGV.
#: ARGV: default reward, retention ms, bucket ttl s, actions a bucket tracks at most, then
#: the event ids (the first of the due zset, read by the caller just before). Closes each
#: of those events still in the zset and past its deadline: active ones are joined with
#: the default reward, deferred ones never activated expire unlearned.
#: The slots of a multi-slot event still without a reward are joined with the default.
#: Returns {joined with default, expired}.
SWEEP = _PRELUDE + _JOIN + """
local defaulted, expired = 0, 0
local H = {KEYS[5], tonumber(ARGV[3]), tonumber(ARGV[4])}
for k = 6, #KEYS do
  local ev, id = KEYS[k], ARGV[k - 1]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now then
    local h = redis.call('HMGET', ev, 'st', 'act', 'sid', 'sl')
    redis.call('ZREM', KEYS[1], id)
    if h[1] == 'open' then
      if h[2] == '1' and h[4] then
        local slots = slot_ids(h[4])
        for _, slot in ipairs(slots) do
          if redis.call('HEXISTS', ev, 'r:' .. slot) == 0 then
            join_slot(ev, KEYS[2], KEYS[1], KEYS[3], KEYS[4], id, h[3], slots, slot, ARGV[1], 'default',
                      tonumber(ARGV[2]), H)
            if slot == slots[1] then redis.call('HINCRBY', KEYS[3], 'defaults', 1) end
          end
        end
        defaulted = defaulted + 1
      elseif h[2] == '1' then
        join(ev, KEYS[2], KEYS[1], KEYS[3], KEYS[4], id, h[3], ARGV[1], 'default', tonumber(ARGV[2]), H)
        redis.call('HINCRBY', KEYS[3], 'defaults', 1)
        defaulted = defaulted + 1
      else
        redis.call('HSET', ev, 'st', 'expired')
        redis.call('HINCRBY', KEYS[3], 'expired', 1)
        expired = expired + 1
      end
    end
  end
end
return {defaulted, expired}
"""

#: KEYS: the learner's lock. ARGV: the learner's token, lock time ms. Renews the lock
#: this learner holds, or takes it when free. Returns 1 when held, 0 otherwise.
LEARNER_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""

#: KEYS: the joined stream. ARGV: the learner's group, entries counted at most.
#: Returns {pending, lag}: entries the group was handed but has not acknowledged, and
#: entries it has not been handed yet (XINFO GROUPS ``lag``; where Redis cannot tell it,
#: before Redis 7, counted after the group's last delivered id, up to the ARGV limit).
#: A stream without the group: {0, XLEN}.
LEARNER_LAG = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then
    local lag = f['lag']
    if type(lag) ~= 'number' then
      local last = f['last-delivered-id']
      local rows = redis.call('XRANGE', KEYS[1], last, '+', 'COUNT', tonumber(ARGV[2]) + 1)
      lag = #rows
      if lag > 0 and rows[1][1] == last then lag = lag - 1 end
      if lag > tonumber(ARGV[2]) then lag = tonumber(ARGV[2]) end
    end
    return {f['pending'], lag}
  end
end
return {0, redis.call('XLEN', KEYS[1])}
"""
