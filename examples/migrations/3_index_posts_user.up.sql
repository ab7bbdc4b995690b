-- Listing a user's posts is the hottest query of the application.
CREATE INDEX posts_user_id_idx ON posts (user_id);
