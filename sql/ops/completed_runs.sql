-- Completion records: one row per (pipeline, ds, source) whose run finished every write. Written
-- LAST by the run, after all its data commits (recsys.warehouse.completion); a rerun first
-- retracts the record, so a crash mid-run leaves the day incomplete. Consumers read only
-- completed days.
CREATE TABLE IF NOT EXISTS ops.completed_runs (
  pipeline        STRING              NOT NULL COMMENT 'recsys_daily or ingest (recsys.warehouse.completion.Pipeline)',
  source          STRING                       COMMENT 'Delivery name for per-delivery pipelines (ingest); NULL otherwise',
  run_id          STRING              NOT NULL COMMENT 'Id of the run that completed',
  completed_ts    TIMESTAMP           NOT NULL COMMENT 'When the record was written, UTC',
  table_versions  MAP<STRING,BIGINT>  NOT NULL COMMENT 'schema.table -> Delta version of the table when the run completed',
  ds              DATE                NOT NULL COMMENT 'Day the run produced (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Which (pipeline, ds) runs finished: consumers read only completed days'
