-- The newest published day of serve.recommendations: what apps read when they do not pin a ds.
-- Created (or replaced) in every session by recsys.warehouse.catalog (attach_tables, apply_ddl).
CREATE OR REPLACE VIEW serve.recommendations_latest
COMMENT 'serve.recommendations of its newest ds'
AS SELECT * FROM serve.recommendations
WHERE ds = (SELECT max(ds) FROM serve.recommendations)
