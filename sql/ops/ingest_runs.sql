-- One row per (ingest run, input file kind): what was read, kept and quarantined.
CREATE TABLE IF NOT EXISTS ops.ingest_runs (
  run_id         STRING    NOT NULL COMMENT 'Id of the ingest run',
  source         STRING    NOT NULL COMMENT 'Name of the delivery',
  file_kind      STRING    NOT NULL COMMENT 'ratings, movies, tags or users',
  n_read         BIGINT    NOT NULL COMMENT 'Data lines read (header excluded)',
  n_good         BIGINT    NOT NULL COMMENT 'Lines that passed validation',
  n_quarantined  BIGINT    NOT NULL COMMENT 'Lines sent to bronze.quarantine',
  bad_fraction   DOUBLE    NOT NULL COMMENT 'n_quarantined / n_read, in [0, 1]',
  status         STRING    NOT NULL COMMENT 'ok or failed',
  message        STRING             COMMENT 'Why the run failed, when it did',
  started_at     TIMESTAMP NOT NULL COMMENT 'Run start, UTC',
  finished_at    TIMESTAMP NOT NULL COMMENT 'Run end, UTC',
  ds             DATE      NOT NULL COMMENT 'Delivery date (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Audit log of ingest runs'
