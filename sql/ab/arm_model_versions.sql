-- Model versions served to each arm of an experiment, as of an analysis day: the served rows
-- (ab.served, every source) of each arm's exposed units from their first exposure to the end of
-- the analysis day (or the experiment's last day), grouped by the version and set they showed.
-- An arm may see several versions over its window (a new bundle promoted mid-experiment) and
-- fallback lists carry no version (NULL). Aggregates only; written by jobs/ab_analyze.py beside
-- ab.results, and like it, a run replaces the rows of (its day, its experiments) only.
CREATE TABLE IF NOT EXISTS ab.arm_model_versions (
  experiment_id    STRING  NOT NULL COMMENT 'Experiment id',
  variant          STRING  NOT NULL COMMENT 'Arm: the variant of the units first exposure, as analysed (intent to treat)',
  model_version    STRING           COMMENT 'Version served (a bundle id joins member versions with +, a baseline its fit id); NULL for fallback lists',
  rec_set          STRING  NOT NULL COMMENT 'Recommendation set served (model, popularity, ...)',
  exposures        BIGINT  NOT NULL COMMENT 'Served lists of this version and set to the arm: exposures counted per serving',
  n_units          BIGINT  NOT NULL COMMENT 'Distinct units of the arm served this version and set',
  share            DOUBLE  NOT NULL COMMENT 'exposures / all exposures of the arm, a fraction in (0, 1]',
  first_served_ds  DATE    NOT NULL COMMENT 'First UTC day this version and set was served to the arm',
  last_served_ds   DATE    NOT NULL COMMENT 'Last UTC day this version and set was served to the arm, up to ds',
  run_id           STRING  NOT NULL COMMENT 'Id of the analysis run',
  ds               DATE    NOT NULL COMMENT 'Analysis day (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'A/B model versions served per experiment arm (aggregates only)'
