-- One row per catalogue item of the delivery (bronze.items), popularity from the train role only.
-- item_index is contiguous 1..n_items in item_id order within one (ds, split_id); 0 is padding.
CREATE TABLE IF NOT EXISTS features.item_features (
  item_id             BIGINT        NOT NULL COMMENT 'Raw item id as in bronze.items',
  item_index          INT           NOT NULL COMMENT 'Contiguous index 1..n_items in item_id order (SASRec vocabulary); stable within (ds, split_id)',
  n_interactions      BIGINT        NOT NULL COMMENT 'Train interactions of the item, >= 0',
  log_count           FLOAT         NOT NULL COMMENT 'ln(1 + n_interactions)',
  decayed_popularity  FLOAT         NOT NULL COMMENT 'Sum over train interactions of 0.5^(age_days / half_life_days), age measured to as_of_ts',
  genres_multi_hot    ARRAY<FLOAT>  NOT NULL COMMENT 'Multi-hot 0/1 in recsys.features.item_features.GENRES order (20; last = no known genre)',
  year                INT                    COMMENT 'Release year from bronze.items; NULL when absent',
  year_std            FLOAT         NOT NULL COMMENT 'Release year standardised over the catalogue; 0 when the year is absent',
  text                STRING        NOT NULL COMMENT 'Encoder input: title, genres and (optionally) tags',
  content_embedding   ARRAY<FLOAT>  NOT NULL COMMENT 'all-MiniLM-L6-v2 embedding of text, 384 floats, unit L2 norm (all zeros with --no-content)',
  is_cold             BOOLEAN       NOT NULL COMMENT 'TRUE when the item has no train interaction (recommendable through content only)',
  as_of_ts            TIMESTAMP     NOT NULL COMMENT 'Reference time of decayed_popularity: end of the train window, UTC',
  split_id            STRING        NOT NULL COMMENT 'Split definition the train role comes from (partition)',
  ds                  DATE          NOT NULL COMMENT 'Feature run date (partition)'
)
USING DELTA
PARTITIONED BY (ds, split_id)
COMMENT 'Item features: popularity from train interactions, genres, year, text and content embedding'
