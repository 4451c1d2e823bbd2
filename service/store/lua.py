"""The Lua scripts that make logging and the reward join atomic across processes.

Each runs as one Redis command, so however many API workers race on one event, exactly
one reward is accepted and the event is joined (handed to the learner) exactly once.
Time is Redis's own clock (``TIME``), the same for every host.

Event hash fields: ``st`` open | joined | expired; ``act`` 1 when the event may be
learned (0 for a deferred event until it is activated); ``dl`` reward deadline (ms);
``sid`` id of the decision in the log stream; ``r`` the reward given by the caller;
``v`` the model version that made the decision.

The live figures of each version (:func:`~service.store.keys.figures`) are counted
here too, in the same scripts: ``<v>:d`` when a decision of version v is logged,
``<v>:n``, ``<v>:s`` and ``<v>:q`` (count, sum and sum of squares of the rewards) when
one of its events is joined, with the caller's reward or the default one. An event
logged without ``v`` counts for no version.
"""

_PRELUDE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# join(event key, joined stream, due zset, stats, figures, event id, decision id, reward,
#      kind, retention ms): also counts the reward in the figures of the event's version
_JOIN = """
local function join(ev, stream, due, stats, figures, id, sid, value, kind, retention)
  redis.call('HSET', ev, 'st', 'joined')
  redis.call('XADD', stream, 'MINID', '~', now - retention, '*', 'e', id, 's', sid, 'r', value, 'k', kind)
  redis.call('ZREM', due, id)
  redis.call('HINCRBY', stats, 'joined', 1)
  redis.call('HINCRBYFLOAT', stats, 'reward_sum', value)
  local v = redis.call('HGET', ev, 'v')
  if v then
    local x = tonumber(value)
    redis.call('HINCRBY', figures, v .. ':n', 1)
    redis.call('HINCRBYFLOAT', figures, v .. ':s', value)
    redis.call('HINCRBYFLOAT', figures, v .. ':q', string.format('%.17g', x * x))
  end
end
"""

# the decision of LOG_DECISION and LOG_STEP; ``figures`` is their last key
_LOG = """
local deadline = now + tonumber(ARGV[4])
local sid = redis.call('XADD', KEYS[2], 'MINID', '~', now - tonumber(ARGV[6]), '*', 'j', ARGV[2])
local active = '1'
if ARGV[3] == '1' then active = '0' end
redis.call('HSET', KEYS[1], 'st', 'open', 'act', active, 'dl', deadline, 'sid', sid, 'v', ARGV[9])
redis.call('HINCRBY', KEYS[#KEYS], ARGV[9] .. ':d', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
redis.call('HINCRBY', KEYS[4], 'decisions', 1)
if active == '0' then redis.call('HINCRBY', KEYS[4], 'deferred', 1) end
redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
redis.call('HINCRBYFLOAT', KEYS[4], 'latency_sum', ARGV[8])
"""
_UNUSED_ID = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'dup'} end
"""

#: KEYS: event, log, due, stats, figures. ARGV: event id, DSJSON, deferred (0/1), wait ms,
#: event ttl s, retention ms, latency bucket field, latency seconds, model version.
#: Returns {'ok', log entry id}, or {'dup'} when the event id is already in use.
LOG_DECISION = _PRELUDE + _UNUSED_ID + _LOG + "return {'ok', sid}"

#: A step of a session (sequential loops): KEYS: event, log, due, stats, session,
#: figures; ARGV: LOG_DECISION's plus step expected, chosen action id, session ttl ms,
#: steps kept, session id.
#: The step is logged only if the session is at that step (an ended session starts
#: a new episode at step 0); it then records the action, moves the session on and
#: renews its TTL. Session hash fields:
#: ``id``, ``ep`` (episode: event id of its first step), ``n`` steps taken, ``a:<i>``
#: and ``r:<i>`` action and reward of step i (the last ``steps kept`` only), ``end``.
#: Returns {'ok', entry id} | {'dup'} | {'step', current step}.
LOG_STEP = _PRELUDE + _UNUSED_ID + """
local s = redis.call('HMGET', KEYS[5], 'n', 'end', 'ep')
local n, cur, ep = tonumber(ARGV[10]), s[1] or '0', s[3] or ARGV[1]
if s[2] then cur, ep = '0', ARGV[1] end
if tonumber(cur) ~= n then return {'step', cur} end
if s[2] then redis.call('DEL', KEYS[5]) end
""" + _LOG + """
redis.call('HSET', KEYS[5], 'id', ARGV[14], 'ep', ep, 'n', n + 1, 'a:' .. n, ARGV[11])
local old = n - tonumber(ARGV[13])
if old >= 0 then redis.call('HDEL', KEYS[5], 'a:' .. old, 'r:' .. old) end
redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[12]))
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

#: KEYS: event, joined, due, stats, ends, figures. ARGV: event id, reward (canonical text),
#: retention ms, end ('1': also close the event's session). A step's reward is also
#: written into its session (if that episode is still live), for the next state.
#: Returns {status[, stored reward]}: ok | same | conflict | gone | unknown | nosession.
REWARD = _PRELUDE + _JOIN + _END + """
local h = redis.call('HMGET', KEYS[1], 'st', 'r', 'dl', 'act', 'sid', 'sk', 'sx', 'ep')
if not h[1] then return {'unknown'} end
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
if h[4] == '1' then join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], ARGV[1], h[5], ARGV[2], 'reward', tonumber(ARGV[3])) end
return {'ok'}
"""

#: KEYS: event, joined, due, stats, figures. ARGV: event id, retention ms.
#: Returns {status}: ok | same (already active) | gone | unknown.
ACTIVATE = _PRELUDE + _JOIN + """
local h = redis.call('HMGET', KEYS[1], 'st', 'r', 'dl', 'act', 'sid')
if not h[1] then return {'unknown'} end
if h[4] == '1' then return {'same'} end
if h[1] ~= 'open' or tonumber(h[3]) < now then return {'gone'} end
redis.call('HSET', KEYS[1], 'act', '1')
redis.call('HINCRBY', KEYS[4], 'activated', 1)
if h[2] then join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], h[5], h[2], 'reward', tonumber(ARGV[2])) end
return {'ok'}
"""

#: KEYS: due, joined, stats, figures. ARGV: event key prefix, default reward, max events,
#: retention ms. Closes every event past its deadline: active ones are joined with
#: the default reward, deferred ones never activated expire unlearned.
#: Returns {joined with default, expired}.
SWEEP = _PRELUDE + _JOIN + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local defaulted, expired = 0, 0
for _, id in ipairs(ids) do
  local ev = ARGV[1] .. id
  local h = redis.call('HMGET', ev, 'st', 'act', 'sid')
  redis.call('ZREM', KEYS[1], id)
  if h[1] == 'open' then
    if h[2] == '1' then
      join(ev, KEYS[2], KEYS[1], KEYS[3], KEYS[4], id, h[3], ARGV[2], 'default', tonumber(ARGV[4]))
      redis.call('HINCRBY', KEYS[3], 'defaults', 1)
      defaulted = defaulted + 1
    else
      redis.call('HSET', ev, 'st', 'expired')
      redis.call('HINCRBY', KEYS[3], 'expired', 1)
      expired = expired + 1
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
