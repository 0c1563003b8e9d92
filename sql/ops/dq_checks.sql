-- Data-quality checks: one row per check and run. jobs/dq_checks.py checks the STAGED day
-- (serve.ranked) before it is published (table_name serve.*); a failed check fails the Airflow task
-- and nothing is published; the rows stay for the record. A rerun replaces its own rows of the
-- day; other jobs' checks (ab.exposures[...]) stay. jobs/score.py publish --require-dq reads them.
CREATE TABLE IF NOT EXISTS ops.dq_checks (
  check_name  STRING     NOT NULL COMMENT 'e.g. row_count, user_coverage, null_rate, score_range, freshness',
  table_name  STRING     NOT NULL COMMENT 'Table checked, schema.table',
  observed    DOUBLE              COMMENT 'Observed value (unit in the check description); NULL when it could not be computed',
  threshold   STRING     NOT NULL COMMENT 'What passes, e.g. ">= 0.95" or "in [0, 1]"',
  passed      BOOLEAN    NOT NULL COMMENT 'TRUE when observed meets threshold',
  detail      STRING     NOT NULL COMMENT 'One line for operators',
  run_id      STRING     NOT NULL COMMENT 'Check run id',
  checked_at  TIMESTAMP  NOT NULL COMMENT 'When checked, UTC',
  ds          DATE       NOT NULL COMMENT 'Run date (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Data-quality check results of published tables'
