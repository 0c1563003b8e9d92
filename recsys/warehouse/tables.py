"""The one place that names tables and columns.

Every table is a path-based Delta table at ``<warehouse_root>/<schema>/<table>`` whose DDL lives
in ``sql/<schema>/<table>.sql``. Code refers to tables and columns only through these constants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from recsys.settings import PROJECT_ROOT

SQL_ROOT: Final[Path] = PROJECT_ROOT / "sql"
_IDENT: Final = re.compile(r"[a-z][a-z0-9_]*")  # fullmatch: no trailing newline


@dataclass(frozen=True, slots=True)
class TableRef:
    """A table known to the warehouse, named ``schema.table`` (lower-case identifiers)."""

    qualified_name: str

    def __post_init__(self) -> None:
        schema, dot, table = self.qualified_name.partition(".")
        if not dot or not _IDENT.fullmatch(schema) or not _IDENT.fullmatch(table):
            raise ValueError(
                f"qualified_name: expected 'schema.table', got {self.qualified_name!r}"
            )

    @property
    def schema(self) -> str:
        return self.qualified_name.partition(".")[0]

    @property
    def table(self) -> str:
        return self.qualified_name.partition(".")[2]

    @property
    def ddl_path(self) -> Path:
        """The DDL file that declares this table."""
        return SQL_ROOT / self.schema / (self.table + ".sql")

    def location(self, warehouse_root: str) -> str:
        """Storage location of the Delta table under ``warehouse_root`` (a path or URI)."""
        return warehouse_root.rstrip("/") + "/" + self.schema + "/" + self.table

    def __str__(self) -> str:
        return self.qualified_name


BRONZE_INTERACTIONS: Final = TableRef("bronze.interactions")
BRONZE_ITEMS: Final = TableRef("bronze.items")
BRONZE_USERS: Final = TableRef("bronze.users")
BRONZE_QUARANTINE: Final = TableRef("bronze.quarantine")
OPS_INGEST_RUNS: Final = TableRef("ops.ingest_runs")
AB_ASSIGNMENTS: Final = TableRef("ab.assignments")
AB_EXPOSURES: Final = TableRef("ab.exposures")
AB_EVENTS: Final = TableRef("ab.events")
AB_METRIC_STATS: Final = TableRef("ab.metric_stats")
AB_RESULTS: Final = TableRef("ab.results")
AB_ARM_MODEL_VERSIONS: Final = TableRef("ab.arm_model_versions")
FEATURES_INTERACTIONS_SPLIT: Final = TableRef("features.interactions_split")
FEATURES_USER_FEATURES: Final = TableRef("features.user_features")
FEATURES_ITEM_FEATURES: Final = TableRef("features.item_features")
FEATURES_RANKER_EXAMPLES: Final = TableRef("features.ranker_examples")
FEATURES_COVISIT: Final = TableRef("features.covisit")
EVAL_OFFLINE_METRICS: Final = TableRef("eval.offline_metrics")
AB_SERVED: Final = TableRef("ab.served")
SERVE_ITEM_EMBEDDINGS: Final = TableRef("serve.item_embeddings")
SERVE_USER_EMBEDDINGS: Final = TableRef("serve.user_embeddings")
SERVE_CANDIDATES: Final = TableRef("serve.candidates")
SERVE_RANKED: Final = TableRef("serve.ranked")
SERVE_RECOMMENDATIONS: Final = TableRef("serve.recommendations")
SERVE_RELATED_ITEMS: Final = TableRef("serve.related_items")
SERVE_TRENDING: Final = TableRef("serve.trending")
#: Views over the newest ds (``sql/serve/<name>.view.sql``, created in every session by
#: :func:`recsys.warehouse.catalog.create_views`); not tables, so not in :data:`ALL_TABLES`.
SERVE_RECOMMENDATIONS_LATEST: Final = TableRef("serve.recommendations_latest")
SERVE_RELATED_ITEMS_LATEST: Final = TableRef("serve.related_items_latest")
#: View (``sql/ab/offline_vs_online.view.sql``): each arm's served model versions, their latest
#: offline metrics and the arm's online result, per analysis day, experiment and metric.
AB_OFFLINE_VS_ONLINE: Final = TableRef("ab.offline_vs_online")
OPS_MODEL_DECISIONS: Final = TableRef("ops.model_decisions")
OPS_DQ_CHECKS: Final = TableRef("ops.dq_checks")
OPS_COMPLETED_RUNS: Final = TableRef("ops.completed_runs")

#: Every table, in the order set-up creates them.
ALL_TABLES: Final[tuple[TableRef, ...]] = (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_USERS,
    BRONZE_QUARANTINE,
    OPS_INGEST_RUNS,
    AB_ASSIGNMENTS,
    AB_EXPOSURES,
    AB_EVENTS,
    AB_METRIC_STATS,
    AB_RESULTS,
    AB_ARM_MODEL_VERSIONS,
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_COVISIT,
    EVAL_OFFLINE_METRICS,
    AB_SERVED,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_USER_EMBEDDINGS,
    SERVE_CANDIDATES,
    SERVE_RANKED,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    OPS_MODEL_DECISIONS,
    OPS_DQ_CHECKS,
    OPS_COMPLETED_RUNS,
)
SCHEMAS: Final[tuple[str, ...]] = tuple(dict.fromkeys(t.schema for t in ALL_TABLES))


class Col:
    """Column names shared across tables."""

    DS: Final = "ds"
    SOURCE: Final = "source"
    RUN_ID: Final = "run_id"
    USER_ID: Final = "user_id"
    ITEM_ID: Final = "item_id"
    RATING: Final = "rating"
    IS_POSITIVE: Final = "is_positive"
    EVENT_TS: Final = "event_ts"
    TITLE: Final = "title"
    YEAR: Final = "year"
    GENRES: Final = "genres"
    TAG_TEXT: Final = "tag_text"
    FIRST_SEEN_TS: Final = "first_seen_ts"
    LAST_SEEN_TS: Final = "last_seen_ts"
    N_INTERACTIONS: Final = "n_interactions"
    GENDER: Final = "gender"
    AGE: Final = "age"
    OCCUPATION: Final = "occupation"
    ZIP_CODE: Final = "zip_code"
    TARGET_TABLE: Final = "target_table"
    SOURCE_FILE: Final = "source_file"
    RAW_LINE: Final = "raw_line"
    REASON: Final = "reason"
    DETAIL: Final = "detail"
    FILE_KIND: Final = "file_kind"
    N_READ: Final = "n_read"
    N_GOOD: Final = "n_good"
    N_QUARANTINED: Final = "n_quarantined"
    BAD_FRACTION: Final = "bad_fraction"
    STATUS: Final = "status"
    STARTED_AT: Final = "started_at"
    FINISHED_AT: Final = "finished_at"
    MESSAGE: Final = "message"
    UNIT_ID: Final = "unit_id"
    EXPERIMENT_ID: Final = "experiment_id"
    LAYER_ID: Final = "layer_id"
    VARIANT: Final = "variant"
    IS_CONTROL: Final = "is_control"
    BUCKET: Final = "bucket"
    VARIANT_BUCKET: Final = "variant_bucket"
    CONFIG_VERSION: Final = "config_version"
    FIRST_EXPOSURE_TS: Final = "first_exposure_ts"
    SURFACE: Final = "surface"
    SERVED_TS: Final = "served_ts"
    EVENT_TYPE: Final = "event_type"
    VALUE: Final = "value"
    METRIC: Final = "metric"
    SLICE: Final = "slice"
    HAS_COVARIATE: Final = "has_covariate"
    COVARIATES: Final = "covariates"
    MOMENTS: Final = "moments"
    ROLE: Final = "role"
    SPLIT_ID: Final = "split_id"
    N_POSITIVE: Final = "n_positive"
    DAYS_SINCE_LAST: Final = "days_since_last"
    MEAN_RATING: Final = "mean_rating"
    STD_RATING: Final = "std_rating"
    GENRE_AFFINITY: Final = "genre_affinity"
    HISTORY: Final = "history"
    HISTORY_INDEX: Final = "history_index"
    DENSE: Final = "dense"
    AS_OF_TS: Final = "as_of_ts"
    ITEM_INDEX: Final = "item_index"
    LOG_COUNT: Final = "log_count"
    DECAYED_POPULARITY: Final = "decayed_popularity"
    GENRES_MULTI_HOT: Final = "genres_multi_hot"
    YEAR_STD: Final = "year_std"
    TEXT: Final = "text"
    CONTENT_EMBEDDING: Final = "content_embedding"
    IS_COLD: Final = "is_cold"
    LABEL: Final = "label"
    KIND: Final = "kind"
    SCORE: Final = "score"
    MODEL_NAME: Final = "model_name"
    MODEL_VERSION: Final = "model_version"
    DATA_VERSION: Final = "data_version"
    K: Final = "k"
    N_USERS: Final = "n_users"
    EVALUATED_AT: Final = "evaluated_at"
    EMBEDDING: Final = "embedding"
    RETRIEVAL_SCORE: Final = "retrieval_score"
    CANDIDATE_RANK: Final = "candidate_rank"
    RANK: Final = "rank"
    EXPLANATION: Final = "explanation"
    REC_SET: Final = "rec_set"
    RELATED_ITEM_ID: Final = "related_item_id"
    NEXT_ITEM_ID: Final = "next_item_id"
    WEIGHT: Final = "weight"
    COVISIT_WINDOW: Final = "covisit_window"
    STEP_DECAY: Final = "step_decay"
    TOP_N: Final = "top_n"
    GENRE: Final = "genre"
    RECENT_COUNT: Final = "recent_count"
    BASELINE_COUNT: Final = "baseline_count"
    ITEM_IDS: Final = "item_ids"
    CHALLENGER_VERSION: Final = "challenger_version"
    CHALLENGER_NDCG: Final = "challenger_ndcg"
    CHAMPION_VERSION: Final = "champion_version"
    CHAMPION_NDCG: Final = "champion_ndcg"
    MARGIN: Final = "margin"
    DECISION: Final = "decision"
    DECIDED_AT: Final = "decided_at"
    CHECK_NAME: Final = "check_name"
    TABLE_NAME: Final = "table_name"
    OBSERVED: Final = "observed"
    THRESHOLD: Final = "threshold"
    PASSED: Final = "passed"
    CHECKED_AT: Final = "checked_at"
    PIPELINE: Final = "pipeline"
    COMPLETED_TS: Final = "completed_ts"
    TABLE_VERSIONS: Final = "table_versions"
    EXPOSURES: Final = "exposures"
    N_UNITS: Final = "n_units"
    SHARE: Final = "share"
    FIRST_SERVED_DS: Final = "first_served_ds"
    LAST_SERVED_DS: Final = "last_served_ds"
    OFFLINE_MODEL_NAME: Final = "offline_model_name"
    OFFLINE_SPLIT_ID: Final = "offline_split_id"
    OFFLINE_DS: Final = "offline_ds"
    OFFLINE_EVALUATED_AT: Final = "offline_evaluated_at"
    OFFLINE_METRICS: Final = "offline_metrics"


class RecSet:
    """Recommendation sets published side by side in ``serve.recommendations`` each ``ds``.

    An experiment serves one set per variant: a variant id that names a set serves that set,
    any other variant serves :attr:`MODEL`.
    """

    MODEL: Final = "model"
    POPULARITY: Final = "popularity"


#: ``serve.trending.genre`` of the overall (all-genre) list.
TRENDING_ALL_GENRES: Final = "all"
