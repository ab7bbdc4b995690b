-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_email_lower_idx ON users (lower(email));

-- +goose Down
DROP INDEX CONCURRENTLY users_email_lower_idx;
