-- Every bronze interaction of one delivery with the role a split definition gives it. Several
-- split definitions coexist (split_id); a rerun for the same (ds, split_id) replaces exactly those
-- rows in one Delta commit. Features are computed from the train role only.
CREATE TABLE IF NOT EXISTS features.interactions_split (
  user_id      BIGINT    NOT NULL COMMENT 'User id as in bronze.interactions',
  item_id      BIGINT    NOT NULL COMMENT 'Raw item id as in bronze.interactions',
  rating       DOUBLE             COMMENT 'Raw explicit rating (MovieLens 0.5-5.0); NULL for implicit events',
  is_positive  BOOLEAN   NOT NULL COMMENT 'Implicit-positive flag from bronze (rating >= 4.0 by default)',
  event_ts     TIMESTAMP NOT NULL COMMENT 'When the interaction happened, UTC',
  role         STRING    NOT NULL COMMENT 'train, validation or test (see recsys.features.split for the rules)',
  split_id     STRING    NOT NULL COMMENT 'Split definition, e.g. leave_last_out or time_cutoff_20180101T000000 (partition)',
  ds           DATE      NOT NULL COMMENT 'Feature run date (partition)'
)
USING DELTA
PARTITIONED BY (ds, split_id)
COMMENT 'Interactions with their train/validation/test role per split definition'
