CREATE TABLE posts (
    id      BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    title   TEXT NOT NULL
);
