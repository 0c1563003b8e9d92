"""The yarn guard: a Spark task refuses to submit unless its connection names its master.

Connections come from ``AIRFLOW_CONN_<ID>`` environment variables (Airflow's env secrets
backend); the provider's own resolution (``SparkSubmitHook._resolve_connection()``) runs
unchanged, and nothing is submitted: no Spark, no metadata database.
"""

from __future__ import annotations

import json

import pytest

# Airflow's throw-away home, `dags` on sys.path and the root logger: tests/dags/conftest.py.
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

from dags.common import (
    SPARK_LOCAL_CONN_JSON,
    SparkConnectionError,
    check_spark_connection,
    spark_job,
)

CONN_ID = "spark_guard_test"
ENV_VAR = "AIRFLOW_CONN_SPARK_GUARD_TEST"


def resolve(monkeypatch: pytest.MonkeyPatch, value: str | None) -> str:
    """Define (or remove) the connection, resolve it as the provider does, then guard it."""
    if value is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, value)
    hook = SparkSubmitHook(conn_id=CONN_ID)
    return check_spark_connection(CONN_ID, hook._resolve_connection())


def test_missing_connection_would_be_yarn_and_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    # The hazard: the provider silently picks yarn for an undefined connection.
    assert SparkSubmitHook(conn_id=CONN_ID)._connection["master"] == "yarn"
    with pytest.raises(SparkConnectionError, match=r"is not defined.*" + ENV_VAR):
        resolve(monkeypatch, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"conn_type": "spark", "host": ', "cannot parse"),  # truncated JSON: "not found"
        ("spark://local[*]", "cannot parse"),  # brackets must be percent-encoded in a URI
        ("not a uri", "not local"),  # parses, to master '://'
        ('{"conn_type": "spark"}', "not local"),  # no host: master 'spark://'
        ('{"conn_type": "spark", "host": "local[x]"}', "not local"),
        ('{"conn_type": "spark", "host": "yarn-ish"}', "does not ask for yarn"),
        ('{"conn_type": "spark", "host": "local[2]\\n"}', "not local"),  # trailing newline
    ],
)
def test_malformed_connection_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    with pytest.raises(SparkConnectionError, match=message):
        resolve(monkeypatch, value)


def test_fallback_to_yarn_on_resolution_error_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any path where the hook falls back to yarn for a non-yarn connection is caught."""
    monkeypatch.setenv(ENV_VAR, SPARK_LOCAL_CONN_JSON)
    resolved = {"master": "yarn", "deploy_mode": None}  # what the hook's except branch yields
    with pytest.raises(SparkConnectionError, match="does not ask for yarn"):
        check_spark_connection(CONN_ID, resolved)


@pytest.mark.parametrize(
    ("value", "master"),
    [
        (SPARK_LOCAL_CONN_JSON, "local[*]"),
        ('{"conn_type": "spark", "host": "local[2]"}', "local[2]"),
        ("spark://local", "local"),
        ("spark://local%5B*%5D", "local[*]"),
        ("spark://127.0.0.1:7077", "spark://127.0.0.1:7077"),
    ],
)
def test_explicit_masters_pass(monkeypatch: pytest.MonkeyPatch, value: str, master: str) -> None:
    assert resolve(monkeypatch, value) == master


def test_k8s_master_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Not through the hook: without the cncf.kubernetes provider its __init__ raises NameError
    # (`kube_client`) for any k8s master.
    master = "k8s://https://10.0.0.1:6443"
    monkeypatch.setenv(ENV_VAR, json.dumps({"conn_type": "spark", "host": master}))
    assert check_spark_connection(CONN_ID, {"master": master}) == master


@pytest.mark.parametrize(
    "value",
    [
        '{"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "client"}}',
        "spark://yarn",
    ],
)
def test_explicit_yarn_is_allowed(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert resolve(monkeypatch, value) == "yarn"


def test_operator_checks_before_submitting(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_get_hook`` (``execute`` calls it before ``submit``) raises; a good conn passes."""
    op = spark_job("guarded", "setup_warehouse", conn_id=CONN_ID)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(SparkConnectionError, match="is not defined"):
        op._get_hook()
    monkeypatch.setenv(ENV_VAR, '{"conn_type": "spark", "host": "local[2]"}')
    assert op._get_hook()._connection["master"] == "local[2]"
