"""The tier's Lua: each step that must not be interleaved with another process's is
one script, one round trip.

Every key a script names is under the namespace's hash tag (``keys``), so that a
script runs on Redis Cluster too; keys built inside a script from ``prefix`` are
in the same slot as the declared ones.
"""

from __future__ import annotations

from typing import Final

#: Publish invalidations: for each, take the next ``seq``, move the generations of
#: what it drops (so that shared copies and leases of it are void: ``keys``) and
#: append it to the bus.  Returns the last ``seq`` taken.
#:
#: KEYS: bus, seq, g:all.  ARGV: prefix, the stream's length, the generations'
#: lifetime (ms), then per invalidation: table ("" = every table), the item key's
#: digest ("" = the whole table), the message.
PUBLISH: Final = """
local prefix, maxlen, lifetime = ARGV[1], ARGV[2], ARGV[3]
local seq = 0
for at = 4, #ARGV, 3 do
    local tbl, item, message = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    seq = redis.call('INCR', KEYS[2])
    if tbl == '' then
        redis.call('SET', KEYS[3], seq)
    elseif item == '' then
        redis.call('SET', prefix .. 'g:t:' .. tbl, seq, 'PX', lifetime)
    else
        redis.call('SET', prefix .. 'g:i:' .. tbl .. ':' .. item, seq, 'PX', lifetime)
        redis.call('SET', prefix .. 'g:q:' .. tbl, seq, 'PX', lifetime)
        redis.call('DEL', prefix .. 'i:' .. tbl .. ':' .. item)
    end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 's', seq, 'm', message)
end
return seq
"""

#: Where the bus stands: the namespace's epoch (set here by the first process to
#: ask), the stream's last entry, the last ``seq`` taken, and the ``seq`` of the entry
#: after the one this process read last (``false`` if the stream no longer has it),
#: read together.
#:
#: KEYS: epoch, bus, seq.  ARGV: a new random epoch, used if there is none; the id of
#: the last entry this process read.
CONNECT: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = false
if #last > 0 then last_id = last[1][1] end
local following = false
local after = redis.call('XRANGE', KEYS[2], '(' .. ARGV[2], '+', 'COUNT', 1)
if #after > 0 then
    local fields = after[1][2]
    for at = 1, #fields, 2 do
        if fields[at] == 's' then following = tonumber(fields[at + 1]) end
    end
end
local epoch, seq = redis.call('GET', KEYS[1]), redis.call('GET', KEYS[3])
return {epoch, last_id and {last_id} or {}, seq, following}
"""
