-- Built without locking out writes. CREATE INDEX CONCURRENTLY cannot run
-- inside a transaction block, so this file holds nothing else: it runs on
-- its own, outside a transaction.
CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user_id_idx ON posts (user_id);
