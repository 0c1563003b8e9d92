"""A/B-test statistics on sufficient statistics (pure numpy/scipy/statsmodels, no Spark).

Public API re-exported here; see each module for the maths and units.
"""

from ab_testing.stats.analysis import analyze_experiment, analyze_experiments, select_test
from ab_testing.stats.comparison import Comparison
from ab_testing.stats.cuped import cuped_ratio_test, cuped_ratio_theta, cuped_t_test, cuped_theta
from ab_testing.stats.experiment import Cell, ExperimentData, MetricSpec, ResultRow
from ab_testing.stats.guardrail import NonInferiorityResult, non_inferiority_test
from ab_testing.stats.moments import RegressionStats, missing_name, moment_keys, sandwich_keys
from ab_testing.stats.multitest import adjust_p_values
from ab_testing.stats.power import (
    mde_from_se,
    mde_means,
    mde_proportions,
    power_from_se,
    sample_size_means,
    sample_size_proportions,
)
from ab_testing.stats.proportion import two_proportion_z_test
from ab_testing.stats.ratio import delta_ratio_test
from ab_testing.stats.regression import (
    RegressionResult,
    regression_adjusted_test,
    regression_test,
    regression_test_arrays,
)
from ab_testing.stats.sequential import (
    SequentialResult,
    always_valid,
    msprt_confidence_sequence,
    msprt_p_values,
    sequential_test,
)
from ab_testing.stats.srm import SrmResult, srm_test
from ab_testing.stats.sufficient import (
    CupedRatioStats,
    CupedStats,
    RatioStats,
    SampleStats,
    cuped_moments,
    stack_stats,
)
from ab_testing.stats.ttest import welch_t_test

__all__ = [
    "Cell",
    "Comparison",
    "CupedRatioStats",
    "CupedStats",
    "ExperimentData",
    "MetricSpec",
    "NonInferiorityResult",
    "RatioStats",
    "RegressionResult",
    "RegressionStats",
    "ResultRow",
    "SampleStats",
    "SequentialResult",
    "SrmResult",
    "adjust_p_values",
    "always_valid",
    "analyze_experiment",
    "analyze_experiments",
    "cuped_moments",
    "cuped_ratio_test",
    "cuped_ratio_theta",
    "cuped_t_test",
    "cuped_theta",
    "delta_ratio_test",
    "mde_from_se",
    "mde_means",
    "mde_proportions",
    "missing_name",
    "moment_keys",
    "msprt_confidence_sequence",
    "msprt_p_values",
    "non_inferiority_test",
    "power_from_se",
    "regression_adjusted_test",
    "regression_test",
    "regression_test_arrays",
    "sample_size_means",
    "sample_size_proportions",
    "sandwich_keys",
    "select_test",
    "sequential_test",
    "srm_test",
    "stack_stats",
    "two_proportion_z_test",
    "welch_t_test",
]
