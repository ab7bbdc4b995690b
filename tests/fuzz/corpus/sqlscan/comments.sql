/* a /* nested; */ b */ SELECT 1; -- tail;
/* unterminated