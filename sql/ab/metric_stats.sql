-- Sufficient statistics per experiment, variant, metric, slice and daily look, cumulative up to
-- the end of look_date: y is the unit's metric numerator, d its denominator (1 unless ratio), x
-- its first covariate (0 without one). moments holds, for a metric with covariates, the sums
-- over units of the products listed by ab_testing.stats.sandwich_keys of v = (1, x_1..x_K, y[, d]):
-- the order-2 and order-4 sums of the exact regression-adjusted (HC1) SE. Partitioned by
-- analysis day; an analysis run replaces the rows of (its day, its experiments) only, so
-- per-experiment runs never erase each other.
CREATE TABLE IF NOT EXISTS ab.metric_stats (
  experiment_id  STRING  NOT NULL COMMENT 'Experiment id',
  variant        STRING  NOT NULL COMMENT 'Variant id',
  metric         STRING  NOT NULL COMMENT 'Metric name from the metrics config',
  slice          STRING  NOT NULL COMMENT 'Slice of units; all = every exposed unit',
  look_date      DATE    NOT NULL COMMENT 'Statistics as of the end of this UTC day',
  n              BIGINT  NOT NULL COMMENT 'Exposed units',
  sum_y          DOUBLE  NOT NULL COMMENT 'Sum of per-unit numerators',
  sum_y_sq       DOUBLE  NOT NULL COMMENT 'Sum of squared per-unit numerators',
  sum_d          DOUBLE  NOT NULL COMMENT 'Sum of per-unit denominators',
  sum_d_sq       DOUBLE  NOT NULL COMMENT 'Sum of squared per-unit denominators',
  sum_yd         DOUBLE  NOT NULL COMMENT 'Sum of numerator x denominator',
  sum_x          DOUBLE  NOT NULL COMMENT 'Sum of per-unit covariates',
  sum_x_sq       DOUBLE  NOT NULL COMMENT 'Sum of squared covariates',
  sum_yx         DOUBLE  NOT NULL COMMENT 'Sum of numerator x covariate',
  sum_dx         DOUBLE  NOT NULL COMMENT 'Sum of denominator x covariate',
  has_covariate  BOOLEAN NOT NULL COMMENT 'TRUE when the metric defines a covariate',
  covariates     ARRAY<STRING>  COMMENT 'Covariate names x_1..x_K in moments order; empty without (NULL: older rows)',
  moments        ARRAY<DOUBLE>  COMMENT 'Sums of products of (1, x_1..x_K, y[, d]) per sandwich_keys; empty without covariates',
  ds             DATE    NOT NULL COMMENT 'Analysis day (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'A/B sufficient statistics (aggregates only)'
