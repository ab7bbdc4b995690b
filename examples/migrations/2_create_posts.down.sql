DROP TABLE posts;
DELETE FROM users WHERE id = 1;
