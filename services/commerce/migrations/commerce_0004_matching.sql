-- Business matching compares categories case-folded and trimmed ("CNC Machining " and "cnc machining" are
-- one category): the normalised form is stored beside the category as posted, so counterpart posts are
-- found by an index rather than by folding every row at query time.
ALTER TABLE posts ADD COLUMN category_key TEXT NOT NULL DEFAULT '';
CREATE INDEX posts_counterparts ON posts (kind, category_key, valid_until);
