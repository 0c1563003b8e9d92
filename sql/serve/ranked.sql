-- Ranked recommendations staged by the ranking step, not yet published. The publish step copies a
-- day of this table to serve.recommendations in one commit. A rerun replaces the day.
CREATE TABLE IF NOT EXISTS serve.ranked (
  rec_set        STRING  NOT NULL COMMENT 'Recommendation set (recsys.warehouse.tables.RecSet): model or popularity',
  user_id        BIGINT  NOT NULL COMMENT 'Raw user id',
  rank           INT     NOT NULL COMMENT 'Position 1..N (default N = 50), 1 is shown first',
  item_id        BIGINT  NOT NULL COMMENT 'Recommended item id',
  score          FLOAT   NOT NULL COMMENT 'Final score, higher is better (ranker probability in [0, 1] for model)',
  explanation    STRING  NOT NULL COMMENT 'Why: "Because you watched <title>" or "Popular in <genre>"',
  source         STRING  NOT NULL COMMENT 'Candidate source: two_tower, sasrec, trending or popular_genre',
  model_version  STRING  NOT NULL COMMENT 'Model artifact version(s), or the baseline fit id',
  run_id         STRING  NOT NULL COMMENT 'Scoring run id',
  ds             DATE    NOT NULL COMMENT 'Scoring date (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Staged final top-N per user and recommendation set, before publishing'
