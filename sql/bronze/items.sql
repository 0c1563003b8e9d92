-- One row per item of a delivery; a re-ingest of the same (source, ds) replaces it.
CREATE TABLE IF NOT EXISTS bronze.items (
  item_id   BIGINT        NOT NULL COMMENT 'Item id as given by the source',
  title     STRING        NOT NULL COMMENT 'Title without the trailing (year)',
  year      INT                    COMMENT 'Release year parsed from the title or the release date; NULL when absent',
  genres    ARRAY<STRING> NOT NULL COMMENT 'Genres; empty when the source says (no genres listed)',
  tag_text  STRING                 COMMENT 'Distinct user tags of the item joined by ", " in first-use order; NULL when none',
  source    STRING        NOT NULL COMMENT 'Name of the delivery (partition)',
  run_id    STRING        NOT NULL COMMENT 'Id of the ingest run that wrote the row',
  ds        DATE          NOT NULL COMMENT 'Delivery date (partition)'
)
USING DELTA
PARTITIONED BY (ds, source)
COMMENT 'Bronze item catalogue, partitioned by delivery date'
