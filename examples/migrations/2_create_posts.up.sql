CREATE TABLE posts (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL DEFAULT '',
    published_at TIMESTAMP
);

INSERT INTO users (id, email, display_name) VALUES (1, 'editor@example.com', 'Editor');
INSERT INTO posts (id, user_id, title, body) VALUES (1, 1, 'Hello', 'The first post.');
