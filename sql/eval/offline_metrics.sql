-- Offline evaluation of recommenders by full ranking (every catalogue item scored, the user's
-- known items removed, top-100 kept) on one split's held-out role. One row per
-- (model, slice, metric, k); a rerun for the same ds replaces the whole day in one Delta commit.
CREATE TABLE IF NOT EXISTS eval.offline_metrics (
  model_name     STRING     NOT NULL COMMENT 'popularity, als, two_tower, sasrec, two_tower+ranker, ...',
  model_version  STRING     NOT NULL COMMENT 'Artifact version (<UTC stamp>-<weights hash>) or a baseline fit id',
  split_id       STRING     NOT NULL COMMENT 'Split definition evaluated, e.g. leave_last_out',
  data_version   STRING     NOT NULL COMMENT 'JSON object: Delta version of every input table read',
  slice          STRING     NOT NULL COMMENT 'all, cold_items, light_users or heavy_users',
  metric         STRING     NOT NULL COMMENT 'recsys.evaluation.Metric value: recall, ndcg, map, hit_rate, mrr, ...',
  k              INT        NOT NULL COMMENT 'Cutoff: only ranks 1..k count',
  value          DOUBLE     NOT NULL COMMENT 'Metric value (novelty in bits, the others in [0, 1])',
  n_users        BIGINT     NOT NULL COMMENT 'Users averaged over',
  run_id         STRING     NOT NULL COMMENT 'Evaluation run id (UUID), shared by every row of a run',
  evaluated_at   TIMESTAMP  NOT NULL COMMENT 'When the evaluation ran, UTC',
  ds             DATE       NOT NULL COMMENT 'Evaluation date, the feature ds evaluated (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Offline full-ranking metrics per model, slice, metric and cutoff'
