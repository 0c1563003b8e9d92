-- Trending items overall (genre = 'all') and per genre: highest recent growth of time-decayed
-- interaction counts against a baseline window, with a minimum support. One commit per ds.
CREATE TABLE IF NOT EXISTS serve.trending (
  genre           STRING  NOT NULL COMMENT 'Genre as in bronze.items, or all for the overall list',
  rank            INT     NOT NULL COMMENT 'Position 1..K within the genre, 1 trends most',
  item_id         BIGINT  NOT NULL COMMENT 'Trending item id',
  score           DOUBLE  NOT NULL COMMENT 'Growth score, higher trends more (see recsys trending module)',
  recent_count    DOUBLE  NOT NULL COMMENT 'Time-decayed interactions in the recent window',
  baseline_count  DOUBLE  NOT NULL COMMENT 'Time-decayed interactions in the baseline window, per recent-window length',
  run_id          STRING  NOT NULL COMMENT 'Run id',
  ds              DATE    NOT NULL COMMENT 'As-of date: windows end at the end of this day, UTC (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Trending items overall and per genre'
