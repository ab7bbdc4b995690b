-- +goose Up
CREATE TABLE users (id BIGSERIAL PRIMARY KEY);

-- +goose Down
DROP TABLE users;
