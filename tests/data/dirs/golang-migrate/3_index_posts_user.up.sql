-- No down migration: dropping the index is never wanted.
CREATE INDEX posts_user_id_idx ON posts (user_id);
