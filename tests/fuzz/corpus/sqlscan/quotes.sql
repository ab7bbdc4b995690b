SELECT 'it''s;', E'a\';b', U&'d\0061t', "x;""y", $tag$ ; $$ $tag$, $1;
