"""The store's atomic operations, as Lua run inside Redis (EVALSHA): each reads, decides and writes
in one step, so two workers acting at the same moment cannot both spend the last token.

Numbers are kept and go back as strings of 17 significant digits (a double exactly): Redis turns a
Lua number into an integer, and Lua's tostring keeps 14 digits, which loses the fraction of a
second from a Unix time.
Times are the callers' wall clocks (hosts run NTP); a clock behind the one that wrote last never
moves a window or a bucket backwards.
"""
from __future__ import annotations

# Token buckets taken in order (KEYS[i]); ARGV: ttl_ms, now, then capacity and refill per second
# of each bucket. Stops at the first bucket that has no token: returns {index, wait seconds},
# {0, "0"} when every bucket gave one. Same arithmetic as extproc/mcp/ratelimit.py.
TAKE_TOKENS = """
local function num(x) return string.format('%.17g', x) end
local ttl, now = ARGV[1], tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local capacity, rate = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local held = redis.call('HMGET', key, 't', 'at')
  local tokens, at = tonumber(held[1]) or capacity, tonumber(held[2]) or now
  local t = math.max(now, at)
  tokens = math.min(capacity, tokens + (t - at) * rate)
  if tokens < 1 then
    redis.call('HSET', key, 't', num(tokens), 'at', num(t))
    redis.call('PEXPIRE', key, ttl)
    return {i, num((1 - tokens) / rate)}
  end
  redis.call('HSET', key, 't', num(tokens - 1), 'at', num(t))
  redis.call('PEXPIRE', key, ttl)
end
return {0, '0'}
"""

# Token budget: reserve ARGV[1] tokens in every window (KEYS[i], one key per window start) whose
# limit is ARGV[1 + 2i] and lifetime ARGV[2 + 2i] ms; nothing is counted unless all can take
# them. Returns the index of the first window that cannot, 0 when reserved.
RESERVE_TOKENS = """
local tokens = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if (tonumber(redis.call('GET', key)) or 0) + tokens > tonumber(ARGV[2 * i]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, tokens)
  redis.call('PEXPIRE', key, ARGV[1 + 2 * i])
end
return 0
"""

# A call admitted in one round trip: TAKE_TOKENS on the first ARGV[3] keys (ARGV: ttl_ms, now,
# bucket count, then capacity and refill of each bucket), then RESERVE_TOKENS on the rest (ARGV
# after the buckets: tokens, then limit and lifetime of each window). Returns {0, 0, '0'}
# admitted, {1, bucket, wait} refused by a rate, {2, window, '0'} refused by a budget.
ADMIT_CALL = """
local function num(x) return string.format('%.17g', x) end
local ttl, now, buckets = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, buckets do
  local key, capacity, rate = KEYS[i], tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local held = redis.call('HMGET', key, 't', 'at')
  local tokens, at = tonumber(held[1]) or capacity, tonumber(held[2]) or now
  local t = math.max(now, at)
  tokens = math.min(capacity, tokens + (t - at) * rate)
  local refused = tokens < 1
  if not refused then tokens = tokens - 1 end
  redis.call('HSET', key, 't', num(tokens), 'at', num(t))
  redis.call('PEXPIRE', key, ttl)
  if refused then return {1, i, num((1 - tokens) / rate)} end
end
local base = 4 + 2 * buckets
local tokens = tonumber(ARGV[base])
for i = buckets + 1, #KEYS do
  local w = i - buckets
  if (tonumber(redis.call('GET', KEYS[i])) or 0) + tokens > tonumber(ARGV[base - 1 + 2 * w]) then
    return {2, w, '0'}
  end
end
for i = buckets + 1, #KEYS do
  redis.call('INCRBY', KEYS[i], tokens)
  redis.call('PEXPIRE', KEYS[i], ARGV[base + 2 * (i - buckets)])
end
return {0, 0, '0'}
"""

# The reservation corrected to what the call used: used - estimated + actual, never below 0, in
# each window of now (KEYS[i], lifetime ARGV[2 + i] ms). ARGV[1] = actual - estimated.
CORRECT_TOKENS = """
local delta = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local used = math.max(0, (tonumber(redis.call('GET', key)) or 0) + delta)
  redis.call('SET', key, used, 'PX', ARGV[1 + i])
end
return 0
"""

# One request of a client added to its behaviour summary, the arithmetic of
# extproc/bot/behaviour.py ClientState.add. KEYS[1]: the summary (its numbers packed with
# cmsgpack: exact doubles, one GET and one SET); KEYS[2]: the client's distinct path, cookie and
# user-agent hashes, one set, members prefixed p/c/u, each kind capped. ARGV: now, ttl_s, ttl_ms,
# is_asset, is_page, has_cookie, has_referer, crawl_control, path hash, cookie hash ('' for none),
# user-agent hash, cap, burst gap, idle gap. Returns SUMMARY_FIELDS in order, as strings.
SUMMARY_FIELDS = ("first", "last", "count", "gap_sum", "gap_square_sum", "gap_min", "bursts", "assets", "pages",
                  "with_cookie", "referers", "crawl_control", "first_is_page", "page_last", "page_sum",
                  "page_squares", "page_min", "page_log_sum", "page_log_squares", "page_log_max",
                  "idle_log_sum", "idle_log_squares", "idle_log_max", "idle", "paths", "cookie_values",
                  "user_agents")
OBSERVE_CLIENT = """
local names = {'first', 'last', 'count', 'gap_sum', 'gap_square_sum', 'gap_min', 'bursts', 'assets', 'pages',
  'with_cookie', 'referers', 'crawl_control', 'first_is_page', 'page_last', 'page_sum', 'page_squares',
  'page_min', 'page_log_sum', 'page_log_squares', 'page_log_max', 'idle_log_sum', 'idle_log_squares',
  'idle_log_max', 'idle', 'paths', 'cookie_values', 'user_agents'}
local now, ttl_s, ttl_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local packed = redis.call('GET', KEYS[1])
local s = {}
if packed then
  local values = cmsgpack.unpack(packed)
  for i, name in ipairs(names) do s[name] = values[i] end
end
if not packed or now - s.last > ttl_s then
  for _, name in ipairs(names) do s[name] = 0 end
  s.first, s.last, s.gap_min, s.page_min, s.page_last = now, now, -1, -1, -1
  s.first_is_page = tonumber(ARGV[5])
  redis.call('DEL', KEYS[2])
end
local function add_log(prefix, gap)
  local logged = math.log(1 + gap)
  s[prefix .. '_sum'] = s[prefix .. '_sum'] + logged
  s[prefix .. '_squares'] = s[prefix .. '_squares'] + logged * logged
  s[prefix .. '_max'] = math.max(s[prefix .. '_max'], logged)
end
if s.count > 0 then
  local gap = math.max(0, now - s.last)
  s.gap_sum = s.gap_sum + gap
  s.gap_square_sum = s.gap_square_sum + gap * gap
  if s.gap_min < 0 or gap < s.gap_min then s.gap_min = gap end
  if gap < tonumber(ARGV[13]) then s.bursts = s.bursts + 1 end
  if gap > tonumber(ARGV[14]) then s.idle = s.idle + 1; add_log('idle_log', gap) end
end
s.count = s.count + 1
s.last = math.max(s.last, now)
s.assets = s.assets + tonumber(ARGV[4])
if ARGV[5] == '1' then
  if s.pages > 0 then
    local gap = math.max(0, now - s.page_last)
    s.page_sum = s.page_sum + gap
    s.page_squares = s.page_squares + gap * gap
    if s.page_min < 0 or gap < s.page_min then s.page_min = gap end
    add_log('page_log', gap)
  end
  s.page_last = now
  s.pages = s.pages + 1
end
s.with_cookie = s.with_cookie + tonumber(ARGV[6])
s.referers = s.referers + tonumber(ARGV[7])
if ARGV[8] == '1' then s.crawl_control = 1 end
local cap = tonumber(ARGV[12])
local kinds = {{'paths', 'p' .. ARGV[9]}, {'cookie_values', 'c' .. ARGV[10]}, {'user_agents', 'u' .. ARGV[11]}}
local offered = {}
for i, kind in ipairs(kinds) do
  if s[kind[1]] < cap and kind[2] ~= 'c' then offered[#offered + 1] = kind end
end
if #offered > 0 then
  local members = {}
  for i, kind in ipairs(offered) do members[i] = kind[2] end
  local known = redis.call('SMISMEMBER', KEYS[2], unpack(members))
  for i, kind in ipairs(offered) do
    if known[i] == 0 then
      redis.call('SADD', KEYS[2], kind[2])
      s[kind[1]] = s[kind[1]] + 1
    end
  end
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
end
local values, out = {}, {}
for i, name in ipairs(names) do
  values[i] = s[name]
  out[i] = string.format('%.17g', s[name])
end
redis.call('SET', KEYS[1], cmsgpack.pack(values), 'PX', ttl_ms)
return out
"""
