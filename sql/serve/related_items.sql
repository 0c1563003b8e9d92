-- For every item, the top-K (default 50) most similar other items by item-tower embedding
-- (content-only embedding for cold items), with a short reason. One commit per ds; a rerun
-- replaces the day. serve.related_items_latest is the newest ds.
CREATE TABLE IF NOT EXISTS serve.related_items (
  item_id          BIGINT  NOT NULL COMMENT 'Item whose page shows the list',
  rank             INT     NOT NULL COMMENT 'Position 1..K, 1 most similar',
  related_item_id  BIGINT  NOT NULL COMMENT 'Similar item, never item_id itself',
  score            FLOAT   NOT NULL COMMENT 'Cosine similarity of the two embeddings, in [-1, 1]',
  reason           STRING  NOT NULL COMMENT 'Short reason: shared genres or tags, or co-watching',
  model_version    STRING  NOT NULL COMMENT 'Two-tower artifact version of the embeddings',
  run_id           STRING  NOT NULL COMMENT 'Run id',
  ds               DATE    NOT NULL COMMENT 'Scoring date (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Related items per item'
