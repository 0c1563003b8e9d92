-- Served recommendations, one row per response an app (or a replay) showed a unit. The exposure
-- job derives ab.exposures (first exposure per experiment and unit) from this table.
CREATE TABLE IF NOT EXISTS ab.served (
  unit_id        STRING         NOT NULL COMMENT 'Randomisation unit id (user id as a decimal string)',
  surface        STRING         NOT NULL COMMENT 'Where it was shown: home, item_page, trending ...',
  served_ts      TIMESTAMP      NOT NULL COMMENT 'When it was served, UTC',
  rec_set        STRING         NOT NULL COMMENT 'Recommendation set served (the variant decides it)',
  item_ids       ARRAY<BIGINT>  NOT NULL COMMENT 'Items shown, in display order',
  model_version  STRING                  COMMENT 'Version of what was served; NULL for fallbacks',
  source         STRING         NOT NULL COMMENT 'Who wrote the rows, e.g. app or replay (partition)',
  ds             DATE           NOT NULL COMMENT 'UTC day of served_ts (partition)'
)
USING DELTA
PARTITIONED BY (ds, source)
COMMENT 'Served recommendation log, input of exposures'
