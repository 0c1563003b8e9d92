-- Promotion-gate decisions: per model and run, the challenger (newest artifact) against the
-- champion (the serving version) on offline NDCG@10. A rerun for the same ds replaces the day.
CREATE TABLE IF NOT EXISTS ops.model_decisions (
  model_name          STRING     NOT NULL COMMENT 'two_tower, sasrec or ranker',
  challenger_version  STRING     NOT NULL COMMENT 'Newest artifact version, the candidate for promotion',
  challenger_ndcg     DOUBLE     NOT NULL COMMENT 'Its offline NDCG@10 on ds, in [0, 1]',
  champion_version    STRING              COMMENT 'Serving version before the decision; NULL when there was none',
  champion_ndcg       DOUBLE              COMMENT 'Champion NDCG@10 compared against (on ds when evaluated there, else at its promotion)',
  margin              DOUBLE     NOT NULL COMMENT 'Allowed NDCG@10 drop, absolute, >= 0',
  decision            STRING     NOT NULL COMMENT 'promoted or kept_champion',
  reason              STRING     NOT NULL COMMENT 'One line on why',
  run_id              STRING     NOT NULL COMMENT 'Gate run id',
  decided_at          TIMESTAMP  NOT NULL COMMENT 'When decided, UTC',
  ds                  DATE       NOT NULL COMMENT 'Run date (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Champion/challenger promotion decisions'
