-- migrate:up transaction:maybe
CREATE TABLE users (id BIGSERIAL PRIMARY KEY);

-- migrate:down
DROP TABLE users;
