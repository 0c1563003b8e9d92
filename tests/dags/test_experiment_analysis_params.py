"""experiment_analysis's string params refuse a trailing newline (jsonschema's ``re.search``
lets ``$`` match before one). Same throw-away ``AIRFLOW_HOME`` set-up as test_dag_integrity."""

from __future__ import annotations

import pytest

# Airflow's throw-away home, `dags` on sys.path and the root logger: tests/dags/conftest.py.
from airflow.sdk.exceptions import ParamValidationError

from dags.experiment_analysis import dag


@pytest.mark.parametrize(
    ("name", "good"),
    [
        ("replay_experiment", "recs_model_vs_popularity"),
        ("replay_data_start", "2010-01-01T00:00:00"),
        ("from_ds", "2027-01-04"),
        ("ds", "2027-01-17"),
        ("source", "ml-latest-small"),
    ],
)
def test_string_param_refuses_a_newline(name: str, good: str) -> None:
    param = dag.params.get_param(name)
    assert param.resolve(good) == good
    for bad in (good + "\n", good + "\r\n", "\n" + good, good + "\nx"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


def test_experiment_param_takes_ids_as_the_config_does() -> None:
    from ab_testing.config_model import ID_PATTERN

    param = dag.params.get_param("replay_experiment")
    longest = "e" + "x" * 62
    assert ID_PATTERN.fullmatch(longest)
    assert param.resolve(longest) == longest
    with pytest.raises(ParamValidationError):
        param.resolve(longest + "x")  # one over the config's limit
