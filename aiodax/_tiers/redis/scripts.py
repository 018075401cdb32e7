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
#: ask), the stream's last entry and the last ``seq`` taken, read together.
#:
#: KEYS: epoch, bus, seq.  ARGV: a new random epoch, used if there is none.
CONNECT: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = false
if #last > 0 then last_id = last[1][1] end
return {redis.call('GET', KEYS[1]), last_id and {last_id} or {}, redis.call('GET', KEYS[3])}
"""

#: A miss asks for a shared copy, or takes the lease to read DynamoDB itself, or
#: learns how long the lease's holder has left: ``{kind, now, generations, payload}``
#: with ``kind`` 1 (a copy: ``payload`` is it), 2 (the lease is this ``token``'s) or 3
#: (another holds it: ``payload`` is its PTTL).  ``now`` is Redis's clock in ms and
#: ``generations`` the copy's ``g:all``, ``g:t:<table>``, ``g:i``/``g:q`` now
#: (``""`` for none), what the copy must have been read under.
#:
#: KEYS: the copy (an item's hash or a page's string), the lease, the three
#: generations.  ARGV: the copy's field in the hash ("" for a page), the token, the
#: lease's time (ms), "read" (a copy, else the lease) or "lease" (the lease only).
GET_OR_LEASE: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local generations = {}
for at = 3, 5 do generations[at - 2] = redis.call('GET', KEYS[at]) or '' end
if ARGV[4] == 'read' then
    local copy
    if ARGV[1] == '' then
        copy = redis.call('GET', KEYS[1])
    else
        copy = redis.call('HGET', KEYS[1], ARGV[1])
    end
    if copy then return {1, now, generations, copy} end
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
    return {2, now, generations, ''}
end
return {3, now, generations, redis.call('PTTL', KEYS[2])}
"""

#: A lease's holder stores its copy: only while the lease is still its ``token``
#: and the generations are still those it was taken under (a drop in between
#: refuses the fill: memcache's stale set, a fencing token in the store).  Either
#: way the lease ends and the waiters are told on the ``filled`` channel.  Returns 1
#: (stored), -1 (refused: a drop came in between) or 0 (the lease was no longer
#: this token's: expired, and maybe taken over).
#:
#: KEYS: the copy, the lease, the three generations.  ARGV: the field ("" for a
#: page), the token, the three generations at lease time, the copy, its PX (ms),
#: the channel, the message (the lease's digest).
FILL: Final = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
local stored = 1
for at = 3, 5 do
    if (redis.call('GET', KEYS[at]) or '') ~= ARGV[at] then stored = -1 end
end
if stored == 1 then
    if ARGV[1] == '' then
        redis.call('SET', KEYS[1], ARGV[6], 'PX', ARGV[7])
    else
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[6])
        -- One TTL for the item's every copy: the longest; each copy's own is in it.
        if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[7]) then
            redis.call('PEXPIRE', KEYS[1], ARGV[7])
        end
    end
end
redis.call('PUBLISH', ARGV[8], ARGV[9])
return stored
"""

#: A holder whose read runs long keeps its lease.  KEYS: the lease.  ARGV: the token,
#: the lease's time (ms).  Returns 1 if it was still the token's.
RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: A holder gives its lease up without a copy (its read failed, or was cancelled)
#: and wakes the waiters.  KEYS: the lease.  ARGV: the token, the channel, the
#: message.  Returns 1 if it was still the token's.
RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.call('PUBLISH', ARGV[2], ARGV[3])
    return 1
end
return 0
"""
