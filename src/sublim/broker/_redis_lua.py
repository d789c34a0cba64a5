"""The Lua scripts of the Redis broker: each one is atomic on the server.

Times are the server's (`TIME`, in milliseconds), so clients' clocks never matter. Per
subscription there is a stream (the messages), a ZSET of lease deadlines and a HASH of lease
tokens, both keyed by entry id, and a one-entry "wake" stream that nacks append to so that
blocked pullers notice. See docs/engines/redis.md for the whole layout.
"""

from __future__ import annotations

_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

#: KEYS: subscriptions hash, topic set, stream. ARGV: subscription, topic, group.
#: Returns the subscription's topic (another one than ARGV[2] means a conflict).
ENSURE_SUBSCRIPTION = """
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return existing end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[3], ARGV[3], '0', 'MKSTREAM')
end
return ARGV[2]
"""

#: KEYS: subscriptions hash. ARGV: key prefix, subscription.
#: Deletes the subscription, its messages and its leases. Returns 1, or 0 if it did not exist.
DROP_SUBSCRIPTION = """
local topic = redis.call('HGET', KEYS[1], ARGV[2])
if not topic then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('SREM', ARGV[1] .. ':topic:' .. topic, ARGV[2])
local base = ARGV[1] .. ':sub:' .. ARGV[2]
redis.call('DEL', base .. ':stream', base .. ':leases', base .. ':tokens', base .. ':wake')
return 1
"""

#: KEYS: topic set. ARGV: key prefix, topic, dedupe window (ms), then (key, data, attributes)
#: triples, a key being '' (none) or '#' followed by the message's key; when no message has a
#: key, the window is 0 and the messages are (data, attributes) pairs.
#: A keyed message is kept only if `SET <prefix>:dedupe:<topic>:<key> 1 NX PX window` set its
#: key (so a second copy, in this call or a later one within the window, is dropped); the
#: kept messages are appended to the stream of every subscription of the topic, atomically.
#: Returns {number of subscriptions, length of the longest of their streams, dropped keys...}.
PUBLISH = """
local out = {0, 0}
local kept = {}
if ARGV[3] == '0' then
  for i = 4, #ARGV, 2 do table.insert(kept, i - 1) end
else
  local dedupe = ARGV[1] .. ':dedupe:' .. ARGV[2] .. ':'
  for i = 4, #ARGV, 3 do
    local key = ARGV[i]
    if key == '' then
      table.insert(kept, i)
    else
      key = string.sub(key, 2)
      if redis.call('SET', dedupe .. key, 1, 'NX', 'PX', ARGV[3]) then
        table.insert(kept, i)
      else
        table.insert(out, key)
      end
    end
  end
end
local subscriptions = redis.call('SMEMBERS', KEYS[1])
local longest = 0
for _, subscription in ipairs(subscriptions) do
  local stream = ARGV[1] .. ':sub:' .. subscription .. ':stream'
  for _, i in ipairs(kept) do
    redis.call('XADD', stream, '*', 'd', ARGV[i + 1], 'a', ARGV[i + 2])
  end
  longest = math.max(longest, redis.call('XLEN', stream))
end
out[1] = #subscriptions
out[2] = longest
return out
"""

#: KEYS: subscriptions hash, stream, leases, tokens, wake stream.
#: ARGV: subscription, group, consumer, max messages, lease (ms), lease token.
#: Reclaims entries whose lease passed (XCLAIM counts the delivery), then reads new ones
#: (XREADGROUP), and leases them all. Returns {0} for an unknown subscription, else
#: {1, ms until the earliest lease passes or -1, last stream id, last wake id,
#:  then id, data, attributes, deliveries for each entry}.
PULL = (
    _NOW
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {0} end
local now = now_ms()
local wanted = tonumber(ARGV[4])
local out = {}
local ids = {}

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return ''
end

local function take(entry, deliveries)
  local id = entry[1]
  table.insert(ids, id)
  for _, value in ipairs({id, field(entry[2], 'd'), field(entry[2], 'a'), deliveries}) do
    table.insert(out, value)
  end
end

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, wanted)
if #due > 0 then
  redis.call('ZREM', KEYS[3], unpack(due))
  redis.call('HDEL', KEYS[4], unpack(due))
  for _, entry in ipairs(redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, unpack(due))) do
    local pending = redis.call('XPENDING', KEYS[2], ARGV[2], entry[1], entry[1], 1)
    take(entry, pending[1][4])
  end
end
if #ids < wanted then
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3],
                          'COUNT', wanted - #ids, 'STREAMS', KEYS[2], '>')
  if read then
    for _, entry in ipairs(read[1][2]) do take(entry, 1) end
  end
end

local retry_in = -1
if #ids > 0 then
  local deadline = now + tonumber(ARGV[5])
  for _, id in ipairs(ids) do
    redis.call('ZADD', KEYS[3], deadline, id)
    redis.call('HSET', KEYS[4], id, ARGV[6])
  end
else
  local earliest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if #earliest > 0 then retry_in = math.max(tonumber(earliest[2]) - now, 0) end
end

local function last_id(stream)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last > 0 then return last[1][1] end
  return '0-0'
end

local head = {1, retry_in, last_id(KEYS[2]), last_id(KEYS[5])}
for _, value in ipairs(out) do table.insert(head, value) end
return head
"""
)

#: KEYS: stream, leases, tokens. ARGV: group, then (entry id, lease token) pairs.
#: Acknowledges and deletes the entries whose token still matches. Returns how many.
ACK = """
local held = {}
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[i + 1] then table.insert(held, ARGV[i]) end
end
if #held > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(held))
  redis.call('XDEL', KEYS[1], unpack(held))
  redis.call('ZREM', KEYS[2], unpack(held))
  redis.call('HDEL', KEYS[3], unpack(held))
end
return #held
"""

#: KEYS: leases, tokens, wake stream. ARGV: delay (ms), then (entry id, lease token) pairs.
#: Releases the entries whose token still matches: they come due after the delay and the next
#: pull reclaims them (counting one more delivery). Wakes blocked pullers. Returns how many.
NACK = (
    _NOW
    + """
local due = now_ms() + tonumber(ARGV[1])
local released = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], due, ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    released = released + 1
  end
end
if released > 0 then redis.call('XADD', KEYS[3], 'MAXLEN', 1, '*', 'nack', released) end
return released
"""
)

#: KEYS: stream, leases, tokens. ARGV: group, consumer, lease (ms), then (entry id, token)
#: pairs. Moves the deadline of the entries whose token still matches and resets their idle
#: time (XCLAIM JUSTID, which does not count a delivery). Returns 1 (held) or 0 per pair.
EXTEND = (
    _NOW
    + """
local deadline = now_ms() + tonumber(ARGV[3])
local held = {}
for i = 4, #ARGV, 2 do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[2], 'XX', deadline, ARGV[i])
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', 0, 'JUSTID')
    table.insert(held, 1)
  else
    table.insert(held, 0)
  end
end
return held
"""
)
