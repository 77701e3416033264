-- KEYS: epoch, match hash, match log, feed, games, reflected (fields: partition -> offset,
--       partition:writes -> count)
-- ARGV: epoch, expected run ('' = absent), expected seq, run, seq, doc, match id, summary
--       ('' = none), max stream length, channel, partition ('' = no mark), reflected through,
--       writes before, then each entry as two: its kind, its JSON
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'EPOCH'} end
local held = {}
if ARGV[11] ~= '' then
  held = redis.call('HMGET', KEYS[6], ARGV[11], ARGV[11] .. ':writes')
  -- Another count than the writer saw: the store lost writes.
  if (held[2] or '0') ~= ARGV[13] then
    return {'BEHIND', held[1] or '-1', held[2] or '0'}
  end
end
local current = redis.call('HMGET', KEYS[2], 'run', 'seq')
if ARGV[2] == '' then
  if current[1] then return {'CONFLICT'} end
elseif current[1] ~= ARGV[2] or current[2] ~= ARGV[3] then
  return {'CONFLICT'}
end
if ARGV[11] ~= '' then
  if not held[1] or tonumber(held[1]) < tonumber(ARGV[12]) then
    redis.call('HSET', KEYS[6], ARGV[11], ARGV[12])
  end
  redis.call('HINCRBY', KEYS[6], ARGV[11] .. ':writes', 1)
end
redis.call('HSET', KEYS[2], 'run', ARGV[4], 'seq', ARGV[5], 'doc', ARGV[6])
local reply = {'OK'}
for i = 14, #ARGV, 2 do
  local kind, entry = ARGV[i], ARGV[i + 1]
  local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'k', kind, 'e', entry)
  reply[#reply + 1] = id
  redis.call('PUBLISH', ARGV[10], '{"topic":"game:' .. ARGV[7] .. '","kind":"' .. kind ..
    '","cursor":"' .. id .. '","data":' .. entry .. '}')
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[7], ARGV[8])
  local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'e', ARGV[8])
  redis.call('PUBLISH', ARGV[10],
    '{"topic":"games","cursor":"' .. id .. '","data":' .. ARGV[8] .. '}')
end
return reply
