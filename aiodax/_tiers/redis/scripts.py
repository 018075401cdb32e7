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
#: append it to the bus.  Returns the last ``seq`` taken.  A generation is
#: ``<seq>:<ms>``, with when it moved on Redis's clock: a lease taken shortly after
#: knows that its read falls inside the drop's fence (``misses.fence_end``).
#:
#: KEYS: bus, seq, g:all.  ARGV: prefix, the stream's length, the generations'
#: lifetime (ms), then per invalidation: table ("" = every table), the item key's
#: digest ("" = the whole table), the message.
PUBLISH: Final = """
local prefix, maxlen, lifetime = ARGV[1], ARGV[2], ARGV[3]
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local seq = 0
for at = 4, #ARGV, 3 do
    local tbl, item, message = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    seq = redis.call('INCR', KEYS[2])
    local generation = seq .. ':' .. now
    if tbl == '' then
        redis.call('SET', KEYS[3], generation)
    elseif item == '' then
        redis.call('SET', prefix .. 'g:t:' .. tbl, generation, 'PX', lifetime)
    else
        redis.call('SET', prefix .. 'g:i:' .. tbl .. ':' .. item, generation, 'PX', lifetime)
        redis.call('SET', prefix .. 'g:q:' .. tbl, generation, 'PX', lifetime)
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

#: Misses ask for shared copies, or take the leases to read DynamoDB themselves, or
#: learn how long the leases' holders have left: ``{now, replies}``, a reply
#: ``{kind, generations, payload}`` per miss with ``kind`` 1 (a copy: ``payload`` is
#: it), 2 (the lease is the miss's ``token``'s) or 3 (another holds it: ``payload`` is
#: its PTTL).  ``now`` is Redis's clock in ms and ``generations`` the miss's
#: ``g:all``, ``g:t:<table>``, ``g:i``/``g:q`` now (``""`` for none), what its copy
#: must have been read under.
#:
#: KEYS, five per miss: the copy (an item's hash or a page's string), the lease, the
#: three generations.  ARGV: the lease's time (ms), then three per miss: the copy's
#: field in the hash ("" for a page), the token, and "read" (a copy, else the lease)
#: or "lease" (the lease only).
GET_OR_LEASE: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local replies = {}
for miss = 0, #KEYS / 5 - 1 do
    local k, a = miss * 5, 1 + miss * 3
    local generations = {}
    for at = 3, 5 do generations[at - 2] = redis.call('GET', KEYS[k + at]) or '' end
    local reply = false
    if ARGV[a + 3] == 'read' then
        local copy
        if ARGV[a + 1] == '' then
            copy = redis.call('GET', KEYS[k + 1])
        else
            copy = redis.call('HGET', KEYS[k + 1], ARGV[a + 1])
        end
        if copy then reply = {1, generations, copy} end
    end
    if not reply then
        if redis.call('SET', KEYS[k + 2], ARGV[a + 2], 'NX', 'PX', ARGV[1]) then
            reply = {2, generations, ''}
        else
            reply = {3, generations, redis.call('PTTL', KEYS[k + 2])}
        end
    end
    replies[miss + 1] = reply
end
return {now, replies}
"""

#: Lease holders store their copies: each only while its lease is still its
#: ``token`` and the generations are still those it was taken under (a drop in
#: between refuses the fill: memcache's stale set, a fencing token kept in the
#: store).  Either way the lease ends and its waiters are told on the ``filled``
#: channel.  Returns per fill 1 (stored), -1 (refused: a drop came in between) or 0
#: (the lease was no longer this token's: expired, and maybe taken over).
#:
#: KEYS, five per fill: the copy, the lease, the three generations.  ARGV: the
#: channel, then eight per fill: the field ("" for a page), the token, the three
#: generations at lease time, the copy, its PX (ms), the message (the lease's digest).
FILL: Final = """
local results = {}
for fill = 0, #KEYS / 5 - 1 do
    local k, a = fill * 5, 1 + fill * 8
    local stored = 0
    if redis.call('GET', KEYS[k + 2]) == ARGV[a + 2] then
        redis.call('DEL', KEYS[k + 2])
        stored = 1
        for at = 3, 5 do
            if (redis.call('GET', KEYS[k + at]) or '') ~= ARGV[a + at] then stored = -1 end
        end
        if stored == 1 then
            if ARGV[a + 1] == '' then
                redis.call('SET', KEYS[k + 1], ARGV[a + 6], 'PX', ARGV[a + 7])
            else
                redis.call('HSET', KEYS[k + 1], ARGV[a + 1], ARGV[a + 6])
                -- One TTL for the item's every copy: the longest; each copy's own is in it.
                if redis.call('PTTL', KEYS[k + 1]) < tonumber(ARGV[a + 7]) then
                    redis.call('PEXPIRE', KEYS[k + 1], ARGV[a + 7])
                end
            end
        end
        redis.call('PUBLISH', ARGV[1], ARGV[a + 8])
    end
    results[fill + 1] = stored
end
return results
"""

#: Holders whose reads run long keep their leases.  KEYS: the leases.  ARGV: the
#: leases' time (ms), then each lease's token.  Returns how many were still theirs.
RENEW: Final = """
local renewed = 0
for at = 1, #KEYS do
    if redis.call('GET', KEYS[at]) == ARGV[at + 1] then
        renewed = renewed + redis.call('PEXPIRE', KEYS[at], ARGV[1])
    end
end
return renewed
"""

#: Holders give their leases up without copies (their read failed, was cancelled,
#: or left the key unprocessed) and wake the waiters.  KEYS: the leases.  ARGV: the
#: channel, then per lease its token and its message.  Returns how many were theirs.
RELEASE: Final = """
local released = 0
for at = 1, #KEYS do
    if redis.call('GET', KEYS[at]) == ARGV[at * 2] then
        redis.call('DEL', KEYS[at])
        redis.call('PUBLISH', ARGV[1], ARGV[at * 2 + 1])
        released = released + 1
    end
end
return released
"""
