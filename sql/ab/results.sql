-- One row per experiment, metric, variant (vs control) and slice for an analysis day: what
-- analysts read. Aggregates only; slices below the minimum unit count carry no numbers. An
-- analysis run replaces the rows of (its day, its experiments) only.
CREATE TABLE IF NOT EXISTS ab.results (
  experiment_id           STRING  NOT NULL COMMENT 'Experiment id',
  metric                  STRING  NOT NULL COMMENT 'Metric name',
  variant                 STRING  NOT NULL COMMENT 'Treatment variant compared with control',
  control                 STRING  NOT NULL COMMENT 'Control variant',
  slice                   STRING  NOT NULL COMMENT 'Slice; all = every exposed unit',
  kind                    STRING           COMMENT 'binomial, mean or ratio',
  guardrail               BOOLEAN NOT NULL COMMENT 'TRUE when tested as a non-inferiority guardrail',
  method                  STRING           COMMENT 'Test used, e.g. welch, z, delta, cuped_welch',
  n_control               BIGINT           COMMENT 'Units in control; NULL when suppressed',
  n_variant               BIGINT           COMMENT 'Units in the variant; NULL when suppressed',
  mean_control            DOUBLE           COMMENT 'Control mean (rate for binomial, sum/sum for ratio)',
  mean_variant            DOUBLE           COMMENT 'Variant mean',
  abs_lift                DOUBLE           COMMENT 'Variant - control, metric units',
  abs_ci_low              DOUBLE           COMMENT 'Lower bound of the abs_lift CI',
  abs_ci_high             DOUBLE           COMMENT 'Upper bound of the abs_lift CI',
  rel_lift                DOUBLE           COMMENT 'Variant / control - 1, a fraction',
  rel_ci_low              DOUBLE           COMMENT 'Lower bound of the rel_lift CI',
  rel_ci_high             DOUBLE           COMMENT 'Upper bound of the rel_lift CI',
  p_value                 DOUBLE           COMMENT 'Two-sided fixed-horizon p-value',
  p_value_adjusted        DOUBLE           COMMENT 'After Holm/BH across primary metrics x variants',
  p_value_sequential      DOUBLE           COMMENT 'Always-valid mSPRT p-value over the daily looks',
  p_value_noninferiority  DOUBLE           COMMENT 'One-sided p-value of a guardrail',
  srm_p_value             DOUBLE           COMMENT 'Sample-ratio-mismatch chi-square p-value',
  power                   DOUBLE           COMMENT 'Achieved power for the target relative effect',
  mde_relative            DOUBLE           COMMENT 'Relative effect detectable with the configured power',
  decision                STRING  NOT NULL COMMENT 'ship, harm, no_effect, inconclusive, not_worse, possibly_worse, srm_fail, not_analysable or suppressed',
  reason                  STRING           COMMENT 'Why a result has no numbers or a non-test decision',
  detail                  STRING           COMMENT 'Error message when the analysis failed',
  run_id                  STRING  NOT NULL COMMENT 'Id of the analysis run',
  ds                      DATE    NOT NULL COMMENT 'Analysis day (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'A/B results per experiment, metric, variant and slice'
