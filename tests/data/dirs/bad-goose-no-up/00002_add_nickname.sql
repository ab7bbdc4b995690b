-- The author forgot the Up annotation.
ALTER TABLE users ADD COLUMN nickname TEXT;

-- +goose Down
ALTER TABLE users DROP COLUMN nickname;
