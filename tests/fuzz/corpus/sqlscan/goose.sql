-- +goose StatementBegin
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RETURN NEW; -- ;
END;
$$;
-- +goose StatementEnd
