-- Labelled (user, item) pairs for the ranker. Each role draws its positives from the same role of
-- features.interactions_split; negatives never include a positive of the user known at that role
-- (train: train positives; validation: train + validation; test: all).
CREATE TABLE IF NOT EXISTS features.ranker_examples (
  user_id   BIGINT  NOT NULL COMMENT 'User id',
  item_id   BIGINT  NOT NULL COMMENT 'Raw item id',
  label     FLOAT   NOT NULL COMMENT '1 for a positive, 0 for a negative',
  kind      STRING  NOT NULL COMMENT 'positive, popular_negative (sampled by train popularity^0.75) or hard_negative (retrieval candidate)',
  role      STRING  NOT NULL COMMENT 'train, validation or test: the role the positive comes from',
  split_id  STRING  NOT NULL COMMENT 'Split definition (partition)',
  ds        DATE    NOT NULL COMMENT 'Feature run date (partition)'
)
USING DELTA
PARTITIONED BY (ds, split_id)
COMMENT 'Ranker training and evaluation examples: positives, popularity and hard negatives'
