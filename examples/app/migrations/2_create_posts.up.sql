CREATE TABLE posts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL DEFAULT '',
    published_at TIMESTAMPTZ
);

INSERT INTO users (email, display_name) VALUES ('editor@example.com', 'Editor');
INSERT INTO posts (user_id, title, body)
    SELECT id, 'Hello', 'The first post.' FROM users WHERE email = 'editor@example.com';
