-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY users_email_lower_idx ON users (lower(email));

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY users_email_lower_idx;
