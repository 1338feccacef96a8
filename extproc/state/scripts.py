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
# extproc/bot/behaviour.py ClientState.add. KEYS: summary hash, path, cookie and user-agent sets.
# ARGV: now, ttl_s, ttl_ms, is_asset, is_page, has_cookie, has_referer, crawl_control, path hash,
# cookie hash ('' for none), user-agent hash, set cap, burst gap, idle gap.
# Returns the summary's fields in SUMMARY_FIELDS order, then the three sets' sizes.
SUMMARY_FIELDS = ("first", "last", "count", "gap_sum", "gap_square_sum", "gap_min", "bursts", "assets", "pages",
                  "with_cookie", "referers", "crawl_control", "first_is_page", "page_last", "page_sum",
                  "page_squares", "page_min", "page_log_sum", "page_log_squares", "page_log_max",
                  "idle_log_sum", "idle_log_squares", "idle_log_max", "idle")
OBSERVE_CLIENT = """
local function num(x) return string.format('%.17g', x) end
local names = {'first', 'last', 'count', 'gap_sum', 'gap_square_sum', 'gap_min', 'bursts', 'assets', 'pages',
  'with_cookie', 'referers', 'crawl_control', 'first_is_page', 'page_last', 'page_sum', 'page_squares',
  'page_min', 'page_log_sum', 'page_log_squares', 'page_log_max', 'idle_log_sum', 'idle_log_squares',
  'idle_log_max', 'idle'}
local now, ttl_s, ttl_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local held = redis.call('HMGET', KEYS[1], unpack(names))
local s = {}
for i, name in ipairs(names) do s[name] = tonumber(held[i]) end
if s.first == nil or now - s.last > ttl_s then
  for _, name in ipairs(names) do s[name] = 0 end
  s.first, s.last, s.gap_min, s.page_min, s.page_last = now, now, -1, -1, -1
  s.first_is_page = tonumber(ARGV[5])
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
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
local function capped_add(key, member)
  if member ~= '' and redis.call('SCARD', key) < cap then redis.call('SADD', key, member) end
  redis.call('PEXPIRE', key, ttl_ms)
  return redis.call('SCARD', key)
end
local paths = capped_add(KEYS[2], ARGV[9])
local cookies = capped_add(KEYS[3], ARGV[10])
local agents = capped_add(KEYS[4], ARGV[11])
local flat, out = {}, {}
for i, name in ipairs(names) do
  flat[2 * i - 1], flat[2 * i] = name, num(s[name])
  out[i] = num(s[name])
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('PEXPIRE', KEYS[1], ttl_ms)
out[#names + 1], out[#names + 2], out[#names + 3] = paths, cookies, agents
return out
"""
