-- First exposure of a unit to an experiment: the earliest served recommendation to the unit on a
-- day it was assigned to the experiment. One row per (experiment_id, unit_id) over all days; a
-- late event that is earlier than the recorded one replaces it.
CREATE TABLE IF NOT EXISTS ab.exposures (
  experiment_id      STRING    NOT NULL COMMENT 'Experiment id',
  layer_id           STRING    NOT NULL COMMENT 'Layer of the experiment',
  variant            STRING    NOT NULL COMMENT 'Variant the unit was assigned when first exposed',
  unit_id            STRING    NOT NULL COMMENT 'Randomisation unit id',
  first_exposure_ts  TIMESTAMP NOT NULL COMMENT 'Serving time of the first recommendation shown while assigned, UTC',
  surface            STRING             COMMENT 'Surface of that first served recommendation, e.g. home; NULL when unknown',
  ds                 DATE      NOT NULL COMMENT 'UTC day of first_exposure_ts (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'A/B first exposures, one per unit and experiment'
