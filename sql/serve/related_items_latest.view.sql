-- The newest day of serve.related_items (item pages read it).
-- Created (or replaced) in every session by recsys.warehouse.catalog (attach_tables, apply_ddl).
CREATE OR REPLACE VIEW serve.related_items_latest
COMMENT 'serve.related_items of its newest ds'
AS SELECT * FROM serve.related_items
WHERE ds = (SELECT max(ds) FROM serve.related_items)
