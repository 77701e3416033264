-- KEYS: epoch, match hash, match log, feed, games
-- ARGV: epoch, expected run ('' = absent), expected seq, run, seq, doc, match id, summary
--       ('' = none), max stream length, channel, then each entry as two: its kind, its JSON
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'EPOCH'} end
local current = redis.call('HMGET', KEYS[2], 'run', 'seq')
if ARGV[2] == '' then
  if current[1] then return {'CONFLICT'} end
elseif current[1] ~= ARGV[2] or current[2] ~= ARGV[3] then
  return {'CONFLICT'}
end
redis.call('HSET', KEYS[2], 'run', ARGV[4], 'seq', ARGV[5], 'doc', ARGV[6])
local reply = {'OK'}
for i = 11, #ARGV, 2 do
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
