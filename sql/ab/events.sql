-- Outcome events of units (clicks, impressions, purchases ...), written by apps or replays. The
-- A/B outcome joins read them within each unit's window after its first exposure.
CREATE TABLE IF NOT EXISTS ab.events (
  unit_id     STRING    NOT NULL COMMENT 'Randomisation unit id (user id as a decimal string)',
  event_type  STRING    NOT NULL COMMENT 'Kind of event, e.g. impression, click, purchase ([a-z][a-z0-9_]*)',
  event_ts    TIMESTAMP NOT NULL COMMENT 'When the event happened, UTC',
  value       DOUBLE             COMMENT 'Amount for sum metrics (e.g. revenue); NULL counts as 0',
  item_id     BIGINT             COMMENT 'Item the event is about, when there is one',
  source      STRING    NOT NULL COMMENT 'Who wrote the events, e.g. app or replay (partition)',
  ds          DATE      NOT NULL COMMENT 'UTC day of event_ts (partition)'
)
USING DELTA
PARTITIONED BY (ds, source)
COMMENT 'A/B outcome events'
