-- One row per user with at least one train interaction, computed from the train role only.
-- Users without train interactions have no row (feed zeros and an empty history).
CREATE TABLE IF NOT EXISTS features.user_features (
  user_id          BIGINT         NOT NULL COMMENT 'User id as in bronze.interactions',
  n_interactions   BIGINT         NOT NULL COMMENT 'Train interactions of the user, >= 1',
  n_positive       BIGINT         NOT NULL COMMENT 'Train positives of the user, >= 0',
  days_since_last  DOUBLE         NOT NULL COMMENT 'Days (fractional, >= 0) from the last train interaction to as_of_ts',
  mean_rating      DOUBLE                  COMMENT 'Mean train rating (0.5-5.0); NULL when no rating is known',
  std_rating       DOUBLE                  COMMENT 'Population standard deviation of train ratings (0 for one rating); NULL when none',
  genre_affinity   ARRAY<FLOAT>   NOT NULL COMMENT 'Per genre in recsys.features.item_features.GENRES order (20): share 0-1 of train positives carrying it',
  history          ARRAY<BIGINT>  NOT NULL COMMENT 'Raw item ids of the last N train positives, oldest first (ties by item_id); may be empty',
  history_index    ARRAY<INT>     NOT NULL COMMENT 'history mapped to features.item_features.item_index (1..n_items) of the same (ds, split_id)',
  dense            ARRAY<FLOAT>   NOT NULL COMMENT 'User tower input, recsys.features.user_features.USER_DENSE_COLUMNS order: 5 z-scores then genre_affinity (25)',
  as_of_ts         TIMESTAMP      NOT NULL COMMENT 'Reference time of days_since_last: end of the train window, UTC',
  split_id         STRING         NOT NULL COMMENT 'Split definition the train role comes from (partition)',
  ds               DATE           NOT NULL COMMENT 'Feature run date (partition)'
)
USING DELTA
PARTITIONED BY (ds, split_id)
COMMENT 'User features from train interactions: activity, recency, ratings, genre affinity, history'
