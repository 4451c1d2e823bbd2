"""The Lua scripts that make logging and the reward join atomic across processes.

Each runs as one Redis command, so however many API workers race on one event, exactly
one reward is accepted and the event is joined (handed to the learner) exactly once.
Time is Redis's own clock (``TIME``), the same for every host.

Event hash fields: ``st`` open | joined | expired; ``act`` 1 when the event may be
learned (0 for a deferred event until it is activated); ``dl`` reward deadline (ms);
``sid`` id of the decision in the log stream; ``r`` the reward given by the caller.
"""

_PRELUDE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# join(event key, joined stream, due zset, stats, event id, decision id, reward, kind, retention ms)
_JOIN = """
local function join(ev, stream, due, stats, id, sid, value, kind, retention)
  redis.call('HSET', ev, 'st', 'joined')
  redis.call('XADD', stream, 'MINID', '~', now - retention, '*', 'e', id, 's', sid, 'r', value, 'k', kind)
  redis.call('ZREM', due, id)
  redis.call('HINCRBY', stats, 'joined', 1)
  redis.call('HINCRBYFLOAT', stats, 'reward_sum', value)
end
"""

#: KEYS: event, log, due, stats. ARGV: event id, DSJSON, deferred (0/1), wait ms,
#: event ttl s, retention ms, latency bucket field, latency seconds.
#: Returns the log entry id, or false when the event id is already in use.
LOG_DECISION = _PRELUDE + """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local deadline = now + tonumber(ARGV[4])
local sid = redis.call('XADD', KEYS[2], 'MINID', '~', now - tonumber(ARGV[6]), '*', 'j', ARGV[2])
local active = '1'
if ARGV[3] == '1' then active = '0' end
redis.call('HSET', KEYS[1], 'st', 'open', 'act', active, 'dl', deadline, 'sid', sid)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
redis.call('HINCRBY', KEYS[4], 'decisions', 1)
if active == '0' then redis.call('HINCRBY', KEYS[4], 'deferred', 1) end
redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
redis.call('HINCRBYFLOAT', KEYS[4], 'latency_sum', ARGV[8])
return sid
"""

#: KEYS: event, joined, due, stats. ARGV: event id, reward (canonical text), retention ms.
#: Returns {status[, stored reward]}: ok | same | conflict | gone | unknown.
REWARD = _PRELUDE + _JOIN + """
local h = redis.call('HMGET', KEYS[1], 'st', 'r', 'dl', 'act', 'sid')
if not h[1] then return {'unknown'} end
if h[2] then
  if h[2] == ARGV[2] then return {'same'} end
  return {'conflict', h[2]}
end
if h[1] ~= 'open' or tonumber(h[3]) < now then return {'gone'} end
redis.call('HSET', KEYS[1], 'r', ARGV[2])
redis.call('HINCRBY', KEYS[4], 'rewards', 1)
if h[4] == '1' then join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], h[5], ARGV[2], 'reward', tonumber(ARGV[3])) end
return {'ok'}
"""

#: KEYS: event, joined, due, stats. ARGV: event id, retention ms.
#: Returns {status}: ok | same (already active) | gone | unknown.
ACTIVATE = _PRELUDE + _JOIN + """
local h = redis.call('HMGET', KEYS[1], 'st', 'r', 'dl', 'act', 'sid')
if not h[1] then return {'unknown'} end
if h[4] == '1' then return {'same'} end
if h[1] ~= 'open' or tonumber(h[3]) < now then return {'gone'} end
redis.call('HSET', KEYS[1], 'act', '1')
redis.call('HINCRBY', KEYS[4], 'activated', 1)
if h[2] then join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], h[5], h[2], 'reward', tonumber(ARGV[2])) end
return {'ok'}
"""

#: KEYS: due, joined, stats. ARGV: event key prefix, default reward, max events,
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
      join(ev, KEYS[2], KEYS[1], KEYS[3], id, h[3], ARGV[2], 'default', tonumber(ARGV[4]))
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
