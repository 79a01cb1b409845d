-- unlock: delete a lock only if it still holds our token, so a holder whose lock expired and was
-- taken by another instance can never release the new holder's lock.
-- KEYS[1] lock key
-- ARGV[1] token
-- Returns 1 if the lock was ours and is released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
