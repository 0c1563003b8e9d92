-- Offline vs online per model version: for each analysis day, experiment, metric and arm, the
-- model version(s) the arm was served (ab.arm_model_versions), the latest offline evaluation of
-- that version (eval.offline_metrics, overall slice: the run with the newest evaluated_at, and
-- its evaluation ds) and the arm's online result against control (ab.results, overall slice).
-- The control arm has is_control TRUE and no lift; an arm served several versions repeats its
-- lift on each version's row (the lift is per arm, intent to treat; share says how much each
-- version contributed). A version never evaluated offline (or a fallback, model_version NULL)
-- has NULL offline columns. Created (or replaced) in every session by recsys.warehouse.catalog.
CREATE OR REPLACE VIEW ab.offline_vs_online
COMMENT 'Model versions per experiment arm: latest offline metrics beside the online lift'
AS WITH evaluations AS (
  SELECT model_version, model_name, split_id, ds, evaluated_at, run_id,
         row_number() OVER (
           PARTITION BY model_version ORDER BY evaluated_at DESC, ds DESC, run_id DESC
         ) AS recency
  FROM (
    SELECT DISTINCT model_version, model_name, split_id, ds, evaluated_at, run_id
    FROM eval.offline_metrics
  )
),
offline_rows AS (
  -- One value per metric@k of the chosen run; max() keeps the map's keys unique should a run
  -- have written a metric twice.
  SELECT e.model_version, e.model_name, e.split_id, e.ds, e.evaluated_at,
         concat(m.metric, '@', CAST(m.k AS STRING)) AS metric_key,
         max(m.value) AS value
  FROM evaluations e
  JOIN eval.offline_metrics m
    ON m.run_id = e.run_id AND m.model_version = e.model_version
   AND m.model_name = e.model_name AND m.split_id = e.split_id AND m.ds = e.ds
   AND m.slice = 'all'
  WHERE e.recency = 1
  GROUP BY e.model_version, e.model_name, e.split_id, e.ds, e.evaluated_at,
           concat(m.metric, '@', CAST(m.k AS STRING))
),
offline AS (
  SELECT model_version,
         model_name AS offline_model_name,
         split_id AS offline_split_id,
         ds AS offline_ds,
         evaluated_at AS offline_evaluated_at,
         map_from_entries(collect_list(struct(metric_key, value))) AS offline_metrics
  FROM offline_rows
  GROUP BY model_version, model_name, split_id, ds, evaluated_at
),
analysed AS (
  SELECT DISTINCT ds, experiment_id, metric, control
  FROM ab.results
  WHERE slice = 'all' AND metric <> '*'
)
SELECT a.ds,
       a.experiment_id,
       x.metric,
       a.variant,
       coalesce(a.variant = x.control, FALSE) AS is_control,
       a.model_version,
       a.rec_set,
       a.exposures,
       a.n_units,
       a.share,
       a.first_served_ds,
       a.last_served_ds,
       o.offline_model_name,
       o.offline_split_id,
       o.offline_ds,
       o.offline_evaluated_at,
       o.offline_metrics['ndcg@10'] AS offline_ndcg_at_10,
       o.offline_metrics['recall@10'] AS offline_recall_at_10,
       o.offline_metrics,
       r.rel_lift,
       r.rel_ci_low,
       r.rel_ci_high,
       r.abs_lift,
       r.abs_ci_low,
       r.abs_ci_high,
       r.p_value,
       r.p_value_adjusted,
       r.decision
FROM ab.arm_model_versions a
LEFT JOIN analysed x
  ON x.ds = a.ds AND x.experiment_id = a.experiment_id
LEFT JOIN ab.results r
  ON r.ds = a.ds AND r.experiment_id = a.experiment_id AND r.metric = x.metric
 AND r.variant = a.variant AND r.slice = 'all'
LEFT JOIN offline o
  ON o.model_version = a.model_version
