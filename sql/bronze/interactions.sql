-- One row per user-item event as delivered by a source. A delivery is (source, ds): re-ingesting
-- the same source for the same ds replaces exactly those rows in one Delta commit.
CREATE TABLE IF NOT EXISTS bronze.interactions (
  user_id      BIGINT    NOT NULL COMMENT 'User id as given by the source',
  item_id      BIGINT    NOT NULL COMMENT 'Item id as given by the source; always present in bronze.items for the same (source, ds)',
  rating       DOUBLE             COMMENT 'Raw explicit rating as delivered (MovieLens: 0.5-5.0 or 1-5); NULL for implicit events',
  is_positive  BOOLEAN   NOT NULL COMMENT 'Implicit-positive flag: rating >= 4.0 (the usual MovieLens convention), or TRUE for implicit events',
  event_ts     TIMESTAMP NOT NULL COMMENT 'When the interaction happened, UTC',
  source       STRING    NOT NULL COMMENT 'Name of the delivery, e.g. ml-latest-small or synthetic (partition)',
  run_id       STRING    NOT NULL COMMENT 'Id of the ingest run that wrote the row',
  ds           DATE      NOT NULL COMMENT 'Delivery date (partition)'
)
USING DELTA
PARTITIONED BY (ds, source)
COMMENT 'Bronze user-item interactions, partitioned by delivery date'
