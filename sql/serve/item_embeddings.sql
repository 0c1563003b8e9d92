-- Item-tower embeddings of every catalogue item for one model version and ds. Cold items (no
-- train interaction) are embedded from content alone. A rerun replaces the day in one commit.
CREATE TABLE IF NOT EXISTS serve.item_embeddings (
  model_version  STRING        NOT NULL COMMENT 'Two-tower artifact version the vectors come from',
  item_id        BIGINT        NOT NULL COMMENT 'Raw item id as in bronze.items',
  embedding      ARRAY<FLOAT>  NOT NULL COMMENT 'Item-tower output, unit L2 norm (model out_dim floats)',
  is_cold        BOOLEAN       NOT NULL COMMENT 'TRUE when embedded from content only (no train interaction)',
  run_id         STRING        NOT NULL COMMENT 'Scoring run id, shared by every table the run writes',
  ds             DATE          NOT NULL COMMENT 'Scoring date, the feature ds scored (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Item embeddings per model version, for retrieval and related items'
