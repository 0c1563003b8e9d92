-- User-tower embeddings of every user with features on ds, for one model version. A rerun
-- replaces the day in one commit.
CREATE TABLE IF NOT EXISTS serve.user_embeddings (
  model_version  STRING        NOT NULL COMMENT 'Two-tower artifact version the vectors come from',
  user_id        BIGINT        NOT NULL COMMENT 'Raw user id',
  embedding      ARRAY<FLOAT>  NOT NULL COMMENT 'User-tower output, unit L2 norm (model out_dim floats)',
  run_id         STRING        NOT NULL COMMENT 'Scoring run id, shared by every table the run writes',
  ds             DATE          NOT NULL COMMENT 'Scoring date, the feature ds scored (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'User embeddings per model version, for retrieval'
