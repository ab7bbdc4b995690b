DROP TABLE posts;
DELETE FROM users WHERE email = 'editor@example.com';
