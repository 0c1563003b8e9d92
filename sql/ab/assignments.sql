-- One row per unit and experiment it is in on a day: the daily assignment snapshot written by
-- jobs/assign.py from the versioned experiments config. A rerun for the same ds replaces that day
-- in one Delta commit. Held-out units and units in no experiment have no row.
CREATE TABLE IF NOT EXISTS ab.assignments (
  unit_id         STRING  NOT NULL COMMENT 'Randomisation unit id (bronze.users.user_id as a decimal string)',
  experiment_id   STRING  NOT NULL COMMENT 'Experiment id from the config ([a-z][a-z0-9_]{0,62})',
  layer_id        STRING  NOT NULL COMMENT 'Layer of the experiment; a unit is in at most one experiment per layer',
  variant         STRING  NOT NULL COMMENT 'Variant id the unit sees',
  is_control      BOOLEAN NOT NULL COMMENT 'TRUE for the experiment control variant',
  bucket          INT     NOT NULL COMMENT 'Bucket 0-9999 of the unit under the layer salt (picks the experiment)',
  variant_bucket  INT     NOT NULL COMMENT 'Bucket 0-9999 of the unit under the experiment salt (picks the variant)',
  config_version  INT     NOT NULL COMMENT 'version field of the experiments config used',
  run_id          STRING  NOT NULL COMMENT 'Id of the assignment run that wrote the row',
  ds              DATE    NOT NULL COMMENT 'Day the assignment holds for, UTC (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'A/B assignments: unit x experiment x day'
