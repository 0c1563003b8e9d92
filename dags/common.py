"""What the DAGs share: default args, the Spark-submit task factory, the yarn guard, the failure
callback and the params' JSON schemas.

Only Airflow and the standard library are imported here, so parsing a DAG file starts no JVM and
reads no config; everything that depends on the machine (Delta's jars, the warehouse root, the
interpreter) is looked up when a task *runs*.

**The Spark connection.** Every Spark task submits through the provider's ``SparkSubmitOperator``
with ``conn_id="spark_local"`` (:data:`SPARK_CONN_ID`). Define it as an environment variable, in
Airflow's JSON form::

    export AIRFLOW_CONN_SPARK_LOCAL='{"conn_type": "spark", "host": "local[*]"}'

or as a URI with the brackets percent-encoded, ``spark://local%5B*%5D`` (unencoded,
``spark://local[*]`` does not parse: Airflow reports the connection as undefined).

``host`` is the Spark master: ``local[N]``, ``spark://host:7077``, ``k8s://https://...`` or
``yarn`` (the last with ``HADOOP_CONF_DIR`` set). ``extra`` may set ``deploy-mode`` (``client``
or ``cluster``) and ``queue``.

**The yarn guard.** When the connection is missing or unparseable, the provider's hook logs one
INFO line and submits with ``--master yarn``; on a machine without YARN the task then fails far
from the cause (or, worse, runs on a cluster nobody meant). :class:`SparkJobOperator` resolves the
connection before anything is submitted (:func:`check_spark_connection`) and raises
:class:`SparkConnectionError` when the connection is missing, unparseable, resolves to a master
that is not ``local[N]`` / ``spark://`` / ``yarn`` / ``k8s://``, or resolves to yarn although it
does not say yarn itself.

**What a Spark task gets at run time** (:meth:`SparkJobOperator.execute`):

- the binary: ``spark-submit`` beside the worker's Python (this venv's), else from ``PATH``;
- ``--jars``: Delta Lake's jars from the project's cache (``RECSYS_JAR_CACHE``). The jobs' session
  factory also sets ``spark.jars``, but under ``spark-submit`` the driver JVM is already running
  by then and Delta's SQL extension is not found (``ClassNotFoundException:
  io.delta.sql.DeltaSparkSessionExtension``); jars given to ``spark-submit`` itself are;
- ``--driver-memory``: ``RECSYS_DRIVER_MEMORY`` (default 4g), for the same reason;
- ``--conf spark.driver.extraJavaOptions``: the class-data-sharing archive of ``make setup``
  (``RECSYS_CDS_ARCHIVE``), when there is one, for the same reason (:mod:`recsys.warehouse.cds`);
- ``--conf``: driver bound to and advertised on ``RECSYS_DRIVER_HOST`` (default ``127.0.0.1``),
  UI as ``RECSYS_SPARK_UI`` says, no console progress bar, log level ``RECSYS_SPARK_LOG_LEVEL``
  (default WARN) from the start;
- environment: the worker's own, plus ``PYTHONPATH=<repo>``, ``PYSPARK_PYTHON=<worker python>``,
  ``SPARK_LOCAL_IP``, ``RECSYS_WAREHOUSE`` (the worker's, default ``<repo>/warehouse``) and
  ``RECSYS_SPARK_MASTER=""``, so that the connection's ``--master`` is the one Spark uses.

Retries: 2, starting 1 minute apart and doubling (at most 30 minutes). Every task logs one line
on failure (:func:`log_task_failure`): dag, task, ds, try, the error's first line and the log URL.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, BaseHook, Context, Param
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

log = logging.getLogger("recsys.dags")

#: Root of the repository (dags/common.py -> one level up).
REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[1]
JOBS_DIR: Final[Path] = REPO_ROOT / "jobs"

#: The Airflow connection every Spark task submits through.
SPARK_CONN_ID: Final = "spark_local"
#: ``AIRFLOW_CONN_SPARK_LOCAL`` for a local master using every core.
SPARK_LOCAL_CONN_JSON: Final = '{"conn_type": "spark", "host": "local[*]"}'

#: Spark master URLs the guard accepts (what ``spark-submit --master`` understands, mesos aside).
#: Used with ``fullmatch`` only: ``match`` with ``$`` would accept a trailing newline.
_MASTER_RE: Final = re.compile(
    r"(local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?"
    r"|spark://[^\s/:,]+(:[0-9]+)?(,[^\s/:,]+(:[0-9]+)?)*"
    r"|yarn"
    r"|k8s://\S+)"
)

#: End of a JSON-schema ``pattern``. Airflow validates params with ``jsonschema``, which runs
#: ``re.search``, where ``$`` also matches before a trailing newline (``"ml-1m\n"`` would pass);
#: "no character follows" means the same in Python and in the browser's ECMAScript regexes.
PATTERN_END: Final = r"(?![\s\S])"
#: Delivery names as ``recsys.settings.IngestConfig`` accepts them.
SOURCE_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,63}" + PATTERN_END
DS_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}" + PATTERN_END
DEFAULT_SOURCE: Final = "ml-latest-small"


def warehouse_asset(qualified_table: str) -> Asset:
    """The Asset of a warehouse table ``schema.table``: ``delta://warehouse/<schema>/<table>``.

    The URI names the table, not a location: the warehouse root is a deployment setting
    (``RECSYS_WAREHOUSE``), so it stays out of asset identity.
    """
    schema, _, table = qualified_table.partition(".")
    if not schema or not table or "." in table:
        raise ValueError(f"qualified_table: expected 'schema.table', got {qualified_table!r}")
    return Asset(name=qualified_table, uri=f"delta://warehouse/{schema}/{table}", group="warehouse")


#: Emitted by ``publish`` of ``recsys_daily`` when a day of recommendations is live (its event's
#: ``extra`` holds ``ds`` and ``source``); ``experiment_analysis`` is scheduled on it.
RECSYS_DAILY_OUTPUT: Final = warehouse_asset("serve.recommendations")


# --------------------------------------------------------------------------------------------
# The yarn guard.


class SparkConnectionError(AirflowException):
    """The Spark connection is missing or malformed, or would silently submit to YARN."""


def check_spark_connection(conn_id: str, resolved: Mapping[str, Any]) -> str:
    """Check what ``SparkSubmitHook._resolve_connection()`` made of ``conn_id``; return the master.

    Args:
        conn_id: The Airflow connection id the hook was given.
        resolved: The hook's resolved connection (``hook._connection``); its ``master`` is what
            ``spark-submit --master`` would get.

    Raises:
        SparkConnectionError: the connection is not defined, cannot be parsed, resolves to an
            unknown master URL, or resolves to yarn without saying yarn.
    """
    env_var = "AIRFLOW_CONN_" + conn_id.upper()
    example = f"{env_var}='{SPARK_LOCAL_CONN_JSON}'"
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raw = os.environ.get(env_var)
        if raw:
            raise SparkConnectionError(
                f"Spark connection {conn_id!r}: {env_var} is set but Airflow cannot parse it "
                f"({raw[:80]!r}); the Spark provider would fall back to --master yarn. "
                f"Expected JSON or a URI, e.g. {example}"
            ) from None
        raise SparkConnectionError(
            f"Spark connection {conn_id!r} is not defined; the Spark provider would fall back to "
            f"--master yarn. Define it, e.g. {example} (see dags/common.py)"
        ) from None
    master = str(resolved.get("master") or "")
    declared = f"conn_type={conn.conn_type!r} host={conn.host!r} port={conn.port!r}"
    says_yarn = conn.conn_type == "yarn" or (conn.host or "").strip().lower() == "yarn"
    if "yarn" in master and not says_yarn:
        raise SparkConnectionError(
            f"Spark connection {conn_id!r} ({declared}) resolves to --master {master!r} although "
            f"it does not ask for yarn; refusing to submit. Set host to the master, e.g. {example}"
        )
    if not _MASTER_RE.fullmatch(master):
        raise SparkConnectionError(
            f"Spark connection {conn_id!r} ({declared}) resolves to --master {master!r}, which is "
            f"not local[N], spark://host:port, yarn or k8s://...; e.g. {example}"
        )
    return master


# --------------------------------------------------------------------------------------------
# The Spark task.


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def runtime_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables a job gets on top of the worker's own (see the module docstring)."""
    environ = os.environ if environ is None else environ
    host = environ.get("RECSYS_DRIVER_HOST") or "127.0.0.1"
    paths = [str(REPO_ROOT), *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        "PYSPARK_PYTHON": environ.get("PYSPARK_PYTHON") or sys.executable,
        "SPARK_LOCAL_IP": environ.get("SPARK_LOCAL_IP") or host,
        "RECSYS_WAREHOUSE": environ.get("RECSYS_WAREHOUSE") or str(REPO_ROOT / "warehouse"),
        # The connection's --master must win over a master meant for `python -m jobs.*` runs.
        "RECSYS_SPARK_MASTER": "",
    }


def runtime_conf(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``--conf`` a job gets: driver on ``RECSYS_DRIVER_HOST`` (loopback), UI as RECSYS_SPARK_UI."""
    environ = os.environ if environ is None else environ
    host = environ.get("RECSYS_DRIVER_HOST") or "127.0.0.1"
    ui = _flag(environ.get("RECSYS_SPARK_UI"), default=True)
    return {
        "spark.driver.host": host,
        "spark.driver.bindAddress": host,
        "spark.ui.enabled": "true" if ui else "false",
        "spark.ui.showConsoleProgress": "false",
        # From SparkContext start on; the session factory sets the same level a moment later.
        "spark.log.level": (environ.get("RECSYS_SPARK_LOG_LEVEL") or "WARN").upper(),
    }


def spark_submit_binary() -> str:
    """``spark-submit`` beside the running interpreter (this venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("spark-submit")
    return str(beside) if beside.is_file() else "spark-submit"


def warehouse_submit_args(environ: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """``(--jars, --driver-memory, driver JVM options)`` from the warehouse settings (run time).

    ``--jars`` lists Delta Lake's jars from the project's cache; ``--driver-memory`` is
    ``RECSYS_DRIVER_MEMORY`` (default 4g); the JVM options map the class-data-sharing archive of
    ``make setup`` (``""`` without one; :mod:`recsys.warehouse.cds`). The session factory cannot
    apply any of them itself under ``spark-submit``: the driver JVM already runs.

    Raises:
        recsys.warehouse.session.WarehouseSetupError: the cache lacks them (run ``make setup``).
    """
    from recsys.settings import load_settings
    from recsys.warehouse.cds import driver_java_options
    from recsys.warehouse.session import delta_jars

    settings = load_settings(None if environ is None else dict(environ))
    jars = ",".join(str(p) for p in delta_jars(settings.jar_cache))
    return jars, settings.driver_memory, driver_java_options(settings.cds_archive)


class SparkJobOperator(SparkSubmitOperator):  # type: ignore[misc]
    """``SparkSubmitOperator`` with the yarn guard, run-time env/conf/jars, and asset extras.

    Args:
        asset_extra: Templated mapping stored as ``extra`` on the event of every Asset in
            ``outlets`` (e.g. ``{"ds": "{{ ds }}"}``), so consumers know which day was produced.
        **kwargs: ``SparkSubmitOperator`` arguments; ``conn_id`` defaults to :data:`SPARK_CONN_ID`.
    """

    template_fields: Sequence[str] = (*SparkSubmitOperator.template_fields, "asset_extra")

    def __init__(self, *, asset_extra: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("conn_id", SPARK_CONN_ID)
        super().__init__(**kwargs)
        self.asset_extra = dict(asset_extra or {})

    def _get_hook(self) -> Any:
        # The hook resolves its connection in __init__ (falling back to yarn); check it before
        # execute() submits anything.
        hook = super()._get_hook()
        master = check_spark_connection(self._conn_id, hook._connection)
        self.log.info("Spark connection %r: --master %s", self._conn_id, master)
        return hook

    def prepare_runtime(self, environ: Mapping[str, str] | None = None) -> None:
        """Fill in binary, jars, conf and env from the worker (explicit arguments win)."""
        self.env_vars = {**runtime_env(environ), **(self.env_vars or {})}
        from recsys.warehouse.cds import with_driver_java_options

        jars, driver_memory, java_options = warehouse_submit_args(environ)
        self.conf = with_driver_java_options(
            {**runtime_conf(environ), **(self.conf or {})}, java_options
        )
        self.jars = f"{jars},{self.jars}" if self.jars else jars
        if self._driver_memory is None:
            self._driver_memory = driver_memory
        if self._spark_binary is None:
            self._spark_binary = spark_submit_binary()

    def execute(self, context: Context) -> None:
        self.prepare_runtime()
        self.application_args = drop_empty_args(self.application_args)
        super().execute(context)
        self.stamp_outlets(context)

    def stamp_outlets(self, context: Context) -> None:
        """Attach :attr:`asset_extra` to the events of this task's Asset outlets."""
        if not self.asset_extra:
            return
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra.update(self.asset_extra)


def drop_empty_args(args: Sequence[str] | None) -> list[str]:
    """Rendered arguments without the empty ones, so a template can make a flag conditional:
    ``"{{ '--no-content' if not params.content_embeddings else '' }}"``."""
    return [a for a in (args or []) if a != ""]


def spark_job(task_id: str, job: str, args: Sequence[str] = (), **kwargs: Any) -> SparkJobOperator:
    """A task running ``spark-submit jobs/<job>.py <args>`` (args are Jinja-templated)."""
    kwargs.setdefault("conn_id", SPARK_CONN_ID)
    return SparkJobOperator(
        task_id=task_id,
        application=str(job_path(job)),
        application_args=list(args),
        name=f"recsys-{task_id}",
        **kwargs,
    )


def spark_job_partial(task_id: str, job: str, **kwargs: Any) -> Any:
    """Like :func:`spark_job`, for dynamic mapping: ``.expand(application_args=...)`` follows."""
    kwargs.setdefault("conn_id", SPARK_CONN_ID)
    return SparkJobOperator.partial(
        task_id=task_id, application=str(job_path(job)), name=f"recsys-{task_id}", **kwargs
    )


def job_path(job: str) -> Path:
    """``<repo>/jobs/<job>.py``; a name with no file there fails at parse time (a bad DAG)."""
    path = JOBS_DIR / f"{job}.py"
    if not path.is_file():
        raise ValueError(f"job: no such Spark job {path}")
    return path


# --------------------------------------------------------------------------------------------
# Failure callback and default args.


def _one_line(text: str, limit: int = 300) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def failure_line(context: Mapping[str, Any]) -> str:
    """The one line :func:`log_task_failure` logs (pure; tests call it with a dict)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    if isinstance(map_index, int) and map_index >= 0:
        task_id = f"{task_id}[{map_index}]"
    ds = context.get("ds")
    if not ds:
        run = context.get("dag_run")
        run_after = getattr(run, "run_after", None)
        ds = f"{run_after:%Y-%m-%d} (run_after; no logical date)" if run_after else "?"
    exc = context.get("exception")
    error = f"{type(exc).__name__}: {_one_line(str(exc))}" if exc is not None else "unknown"
    log_url = getattr(ti, "log_url", None) or "?"
    return (
        f"TASK FAILED dag={dag_id} task={task_id} ds={ds} try={getattr(ti, 'try_number', '?')} "
        f"error={error!r} log={log_url}"
    )


def log_task_failure(context: Context) -> None:
    """``on_failure_callback``: one line with dag, task, ds, try, error and log location."""
    log.error("%s", failure_line(context))


def default_args(**overrides: Any) -> dict[str, Any]:
    """Default args of every task: owner, 2 retries with exponential backoff, failure line."""
    args: dict[str, Any] = {
        "owner": "recsys",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=3),
        "on_failure_callback": log_task_failure,
    }
    args.update(overrides)
    return args


def dag_settings(timeout_hours: float) -> dict[str, Any]:
    """What every DAG of ours sets alike: start 2026-01-01 UTC, no catchup, one active run, a
    run timeout of ``timeout_hours`` and :func:`default_args`; pass as ``DAG(..., **these)``."""
    return {
        "start_date": datetime(2026, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "dagrun_timeout": timedelta(hours=timeout_hours),
        "default_args": default_args(),
    }


# --------------------------------------------------------------------------------------------
# Params (JSON schema, validated by Airflow when a run is triggered and when a task starts).


def source_param(default: str | None = DEFAULT_SOURCE) -> Param:
    """A delivery name, as ``jobs.ingest --source`` accepts it (None allowed when default)."""
    if default is None:
        return Param(
            None,
            type=["null", "string"],
            pattern=SOURCE_PATTERN,
            description="Bronze delivery name; empty: the source of the triggering daily run.",
        )
    return Param(
        default, type="string", pattern=SOURCE_PATTERN, description="Bronze delivery name."
    )


def ds_param() -> Param:
    """An optional day YYYY-MM-DD overriding the run's own."""
    return Param(
        None,
        type=["null", "string"],
        pattern=DS_PATTERN,
        format="date",
        description="Day to process, YYYY-MM-DD; empty: derived from the run (see the DAG doc).",
    )


def int_param(default: int, description: str, *, minimum: int, maximum: int | None = None) -> Param:
    """An integer in ``[minimum, maximum]`` (no upper bound when ``maximum`` is None)."""
    if maximum is None:
        return Param(default, type="integer", minimum=minimum, description=description)
    return Param(default, type="integer", minimum=minimum, maximum=maximum, description=description)


def string_param(default: str, description: str, pattern: str) -> Param:
    """A string matching ``pattern`` (a regex anchored with ``^``) to its very end
    (:data:`PATTERN_END` is appended here)."""
    return Param(default, type="string", pattern=pattern + PATTERN_END, description=description)


def path_param(default: Path | str, description: str) -> Param:
    """A non-empty path (existence is checked by the job at run time, not at parse time)."""
    return Param(str(default), type="string", minLength=1, description=description)
