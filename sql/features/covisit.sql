-- Sequential co-visitation of the train role, truncated per item (recsys.training.covisit): weight =
-- sum of step_decay^(d-1) over users whose train sequence (ordered by event_ts, ties by item_id) has
-- next_item_id d <= covisit_window events after item_id, divided by 1 + the item's whole row sum;
-- only each item's top_n heaviest followers are kept (ties by the lower next_item_id).
CREATE TABLE IF NOT EXISTS features.covisit (
  item_id         BIGINT  NOT NULL COMMENT 'Raw item id of the preceding item (the row)',
  next_item_id    BIGINT  NOT NULL COMMENT 'Raw item id of an item that follows it within covisit_window events',
  weight          FLOAT   NOT NULL COMMENT 'Row-normalised decayed count, in (0, 1)',
  rank            INT     NOT NULL COMMENT 'Position of next_item_id in the row: 1 = heaviest, ties by the lower next_item_id; rank <= n gives the top-n truncation',
  covisit_window  INT     NOT NULL COMMENT 'Events after item_id that count as following it (CovisitConfig.window)',
  step_decay      DOUBLE  NOT NULL COMMENT 'Weight ratio per extra step (CovisitConfig.step_decay)',
  top_n           INT     NOT NULL COMMENT 'Followers kept per item when built (CovisitConfig.top_n); rank <= top_n',
  split_id        STRING  NOT NULL COMMENT 'Split definition the train role comes from (partition)',
  ds              DATE    NOT NULL COMMENT 'Feature run date (partition)'
)
USING DELTA
PARTITIONED BY (ds, split_id)
COMMENT 'Item-to-next-item co-visitation of train sequences, top_n per item: the ranker input of training, evaluation and serving'
