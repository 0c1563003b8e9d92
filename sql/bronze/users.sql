-- One row per user of a delivery: demographics where the source has them (ml-100k, ml-1m), and
-- activity bounds derived from the delivered interactions.
CREATE TABLE IF NOT EXISTS bronze.users (
  user_id         BIGINT    NOT NULL COMMENT 'User id as given by the source',
  first_seen_ts   TIMESTAMP          COMMENT 'Earliest interaction of the user in this delivery, UTC',
  last_seen_ts    TIMESTAMP          COMMENT 'Latest interaction of the user in this delivery, UTC',
  n_interactions  BIGINT    NOT NULL COMMENT 'Number of valid interactions of the user in this delivery',
  gender          STRING             COMMENT 'M/F where the source has it, else NULL',
  age             INT                COMMENT 'Age (ml-100k) or age bucket (ml-1m) where the source has it, else NULL',
  occupation      STRING             COMMENT 'Occupation where the source has it, else NULL',
  zip_code        STRING             COMMENT 'Zip code where the source has it, else NULL',
  source          STRING    NOT NULL COMMENT 'Name of the delivery (partition)',
  run_id          STRING    NOT NULL COMMENT 'Id of the ingest run that wrote the row',
  ds              DATE      NOT NULL COMMENT 'Delivery date (partition)'
)
USING DELTA
PARTITIONED BY (ds, source)
COMMENT 'Bronze users, partitioned by delivery date'
