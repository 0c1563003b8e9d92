-- Input rows that failed validation, kept verbatim with the reason: nothing is dropped silently.
CREATE TABLE IF NOT EXISTS bronze.quarantine (
  target_table  STRING NOT NULL COMMENT 'Table the row was meant for, e.g. bronze.interactions',
  source_file   STRING NOT NULL COMMENT 'File the row came from',
  raw_line      STRING NOT NULL COMMENT 'The source line as read (invalid UTF-8 bytes replaced by U+FFFD)',
  reason        STRING NOT NULL COMMENT 'Machine-readable reason, one of recsys.ingest.validation.Reason',
  detail        STRING          COMMENT 'Human-readable detail, e.g. the offending field',
  source        STRING NOT NULL COMMENT 'Name of the delivery (partition)',
  run_id        STRING NOT NULL COMMENT 'Id of the ingest run that quarantined the row',
  ds            DATE   NOT NULL COMMENT 'Delivery date (partition)'
)
USING DELTA
PARTITIONED BY (ds, source)
COMMENT 'Rejected input rows with their reason'
