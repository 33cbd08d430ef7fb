"""Every configurable setting of ecrm, validated by pydantic.

Configuration is data: a YAML file (``configs/default.yaml`` unless ``--config`` or ``ECRM_CONFIG``
names another) is validated against :class:`Settings`. Models are frozen and forbid unknown keys, so a
typo in a YAML file is an error that names the field instead of a silently ignored setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.yaml")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqliteOnlineStore(_Frozen):
    """Feast online store in a SQLite file inside the workspace (the embedded default)."""

    type: Literal["sqlite"] = "sqlite"


class RedisOnlineStore(_Frozen):
    """Feast online store on a Redis server, e.g. ``127.0.0.1:6379,db=0``."""

    type: Literal["redis"] = "redis"
    connection_string: str = "127.0.0.1:6379,db=0"

    @field_validator("connection_string")
    @classmethod
    def _feast_format(cls, value: str) -> str:
        if "://" in value:
            raise ValueError(f"{value!r}: Feast wants HOST:PORT[,db=N][,password=...][,ssl=true], not a URL")
        host_port = value.split(",", 1)[0]
        if not host_port.rpartition(":")[2].isdigit():
            raise ValueError(f"{value!r}: must start with HOST:PORT, e.g. 127.0.0.1:6379,db=0")
        return value


class DuckDBOfflineStore(_Frozen):
    """Feast offline store over parquet files read by DuckDB (the embedded default)."""

    type: Literal["duckdb"] = "duckdb"


LOCAL_SPARK_CONF: dict[str, str] = {
    "spark.master": "local[2]",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


class SparkOfflineStore(_Frozen):
    """Feast's Spark offline store over the same parquet snapshots (needs ``uv sync --extra spark``).

    ``spark_conf`` configures the Spark session (default: local Spark on 2 cores, loopback only, UTC);
    point ``spark.master`` at a cluster to run elsewhere. The session time zone must stay UTC.
    """

    type: Literal["spark"] = "spark"
    spark_conf: dict[str, str] = Field(default_factory=lambda: dict(LOCAL_SPARK_CONF))

    @field_validator("spark_conf")
    @classmethod
    def _utc_session(cls, conf: dict[str, str]) -> dict[str, str]:
        tz = conf.setdefault("spark.sql.session.timeZone", "UTC")
        if tz != "UTC":
            raise ValueError(f"spark.sql.session.timeZone must be UTC (snapshot times are UTC), not {tz!r}")
        return conf


class FeastSettings(_Frozen):
    """Where Feast keeps its registry, offline and online stores."""

    project: str = "ecrm"
    online_store: SqliteOnlineStore | RedisOnlineStore = Field(
        default_factory=SqliteOnlineStore, discriminator="type"
    )
    offline_store: DuckDBOfflineStore | SparkOfflineStore = Field(
        default_factory=DuckDBOfflineStore, discriminator="type"
    )


class MlflowSettings(_Frozen):
    """MLflow tracking and registry. ``tracking_uri: null`` means a SQLite file in the workspace.

    The environment variable ``MLFLOW_TRACKING_URI`` overrides the file setting.
    """

    tracking_uri: str | None = None
    experiment: str = "ecrm"
    artifact_location: str | None = Field(
        None, description="where a new experiment stores model files (e.g. s3://bucket/ecrm or a shared folder); "
        "null = WORKSPACE/mlflow/artifacts for a database tracking URI, the server's choice for http(s)"
    )


class SyntheticSettings(_Frozen):
    """The embedded synthetic shop."""

    customers: int = Field(20_000, gt=0)
    products: int = Field(1_000, gt=0)
    seed: int = 42
    start: str = "2022-01-01"
    end: str = "2024-01-01"

    @model_validator(mode="after")
    def _check_period(self) -> "SyntheticSettings":
        import pandas as pd

        if pd.Timestamp(self.end) <= pd.Timestamp(self.start):
            raise ValueError(f"synthetic.end ({self.end}) must be after synthetic.start ({self.start})")
        return self


class LightGBMSettings(_Frozen):
    """LightGBM hyper-parameters shared by the gradient-boosted customer models."""

    n_estimators: int = Field(400, gt=0)
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(50, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    subsample_freq: int = 1
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(5.0, ge=0)
    early_stopping_rounds: int = Field(50, gt=0)


class ChurnSettings(_Frozen):
    """The churn model: label window, training cutoffs, risk bands."""

    horizon_days: int = Field(90, gt=0, description="H: churned = no order in [cutoff, cutoff + H)")
    eligibility_days: int = Field(365, gt=0, description="eligible = an order in the days before the cutoff")
    training_cutoffs: int = Field(15, ge=2, description="monthly training cutoffs stacked into one data set")
    cutoff_step_days: int = Field(30, gt=0)
    init_from_bgnbd: bool = True
    lightgbm: LightGBMSettings = Field(default_factory=LightGBMSettings)
    risk_bands: dict[str, float] = Field(
        default_factory=lambda: {"high": 0.7, "medium": 0.4, "low": 0.0},
        description="band name -> lower bound of churn probability; the highest bound a score reaches wins",
    )
    top_drivers: int = Field(3, ge=1, le=10)
    max_training_customers: int | None = Field(
        50_000, ge=1, description="the churn and next-purchase training sets hold at most this many customers "
        "(each at every cutoff): above it a stable seeded sample of customers is drawn, which bounds training "
        "time and memory on large shops; every customer is still scored. null = no cap")

    @field_validator("risk_bands")
    @classmethod
    def _check_bands(cls, bands: dict[str, float]) -> dict[str, float]:
        if not bands:
            raise ValueError("risk_bands needs at least one band")
        if min(bands.values()) > 0.0:
            raise ValueError("risk_bands needs a band with lower bound 0.0 so every score gets a band")
        if any(not 0.0 <= v <= 1.0 for v in bands.values()):
            raise ValueError("risk_bands bounds must lie in [0, 1]")
        return bands


class NextPurchaseSettings(_Frozen):
    """The next-purchase and customer-value model (horizon and training cutoffs are the churn model's)."""

    short_days: int = Field(30, gt=0, description="P(order within this many days) is forecast besides H")
    tweedie_variance_power: float = Field(1.5, gt=1, lt=2, description="spend objective: 1 = Poisson, 2 = gamma")
    lightgbm: LightGBMSettings = Field(
        default_factory=lambda: LightGBMSettings(n_estimators=600, learning_rate=0.05, early_stopping_rounds=30))


class CandidateSettings(_Frozen):
    """How many candidates each source proposes per customer before the rankers order them. Fewer can
    lose items a ranker would have put first, more cost time; measured in README.md, "Configuration"."""

    own: int = Field(50, ge=1, description="items the customer bought, most orders then most recent first")
    together: int = Field(30, ge=1, description="items most often in the same baskets as theirs")
    similar: int = Field(30, ge=1, description="items bought by customers who bought the same items")
    ease: int = Field(30, ge=1, description="EASE's top never-bought items")
    popular: int = Field(10, ge=1, description="the shop's most bought items (last 90 days)")
    trending: int = Field(10, ge=0, description="the fastest-rising items")
    season: int = Field(10, ge=0, description="last year's best sellers of the coming season")
    category: int = Field(10, ge=0, description="top items of each of the customer's top categories")


class RecommenderSettings(_Frozen):
    """The recommender: ranker training window, candidates and the precomputed lists."""

    enabled: bool = Field(True, description="train the recommender with the other models (needs product ids)")
    horizon_days: int = Field(90, gt=0, description="a recommendation is relevant if bought within this many days")
    training_cutoffs: int = Field(4, ge=1, description="past cutoffs the ranker learns from")
    cutoff_step_days: int = Field(30, gt=0)
    lookback_days: int = Field(365, gt=0, description="customers with an order in these days get personal lists")
    list_size: int = Field(50, ge=10, description="items precomputed per customer and list (room for filters)")
    batch_k: int = Field(10, ge=1, description="items per customer in the batch outputs of `ecrm score`")
    max_k: int = Field(100, ge=1, description="largest k one HTTP request may ask for")
    max_training_customers: int | None = Field(
        10_000, ge=1, description="at most this many customers (queries) per ranker training or validation "
        "cutoff: above it a seeded random sample is drawn (bounds the rankers' memory and time; a shop with "
        "fewer buyers per cutoff trains on all of them); null = no cap")
    candidates: CandidateSettings = Field(default_factory=CandidateSettings)


class EvaluationSettings(_Frozen):
    """``ecrm evaluate``: rolling-origin backtest cutoffs and the promotion gate."""

    cutoffs: int = Field(3, ge=1, description="number of backtest cutoffs, the last one H days before the data ends")
    cutoff_step_days: int = Field(60, gt=0, description="days between backtest cutoffs")
    bootstrap_samples: int = Field(500, ge=50, description="paired bootstrap resamples for the 95% intervals")
    promotion_metric: dict[str, str] = Field(
        default_factory=lambda: {"ecrm-churn": "brier", "ecrm-next-purchase": "poisson_deviance"},
        description="model -> metric the promotion gate compares (lower is better for both defaults)",
    )


class WarningSettings(_Frozen):
    """Warning thresholds on key CRM indicators (see serving/crm_warnings.py)."""

    top_tier_high_risk_share_max: float = Field(0.25, ge=0, le=1, description="top value tier at high churn risk")
    churned_rate_max: float = Field(0.5, ge=0, le=1, description="scored customers in lifecycle stage churned")
    repeat_purchase_rate_min: float = Field(0.2, ge=0, le=1, description="last quarter's repeat-purchase rate")
    new_customers_drop_max: float = Field(0.3, ge=0, le=1, description="drop of new customers vs the quarter before")


class ComputeSettings(_Frozen):
    """How much of the machine model fitting may use (not part of any model's configuration)."""

    threads: int = Field(2, ge=1, description="LightGBM threads when fitting the customer models. Always an "
                         "explicit count: LightGBM's result depends on it, and its 'default' is whatever thread "
                         "count the process last used (a one-thread prediction changes it)")


class ServingSettings(_Frozen):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = Field(3000, gt=0, lt=65536)
    max_ids_per_request: int = Field(1000, gt=0)
    max_body_bytes: int = Field(1_048_576, gt=0, description="larger request bodies get 413")
    auth: bool = Field(True, description="require an X-API-Key header (keys: ECRM_API_KEYS or api_keys_file)")
    reload_seconds: float = Field(30.0, ge=0, description="how often to look for a new champion (0 = never)")
    api_keys_file: Path | None = Field(None, description="file with one accepted API key per line")
    workers: int = Field(2, ge=1, le=64, description="server worker processes, each with its own copy of the models "
                                                      "(about one per CPU core)")
    keepalive_requests: int = Field(200, ge=0, description="about one response in this many (per worker) asks its "
                                    "client to reconnect, so keep-alive connections spread over the workers "
                                    "(0 = never)")
    request_tracing: bool = Field(False, description="an OpenTelemetry span per request, exported as BentoML's "
                                  "tracing configuration says (BENTOML_CONFIG); off, no span is made")
    access_log: bool = Field(False, description="one log line per HTTP request (time, client address, path, "
                             "status, latency); the Prometheus metrics count requests either way")


class PrivacySettings(_Frozen):
    """Customer-data privacy (see features/privacy): pseudonymous ids and how long raw events are kept."""

    pseudonymize_customer_ids: bool = Field(False, description="replace customer ids at load time by keyed "
                                            "HMAC-SHA256 pseudonyms; the key comes from ECRM_PSEUDONYM_KEY")
    retention_days: int | None = Field(None, gt=0, description="orders and sessions older than this many days are "
                                       "removed by `ecrm data purge-expired` (null = keep forever)")


class Settings(_Frozen):
    """Root of the configuration."""

    workspace: Path = Path(".ecrm")
    feast: FeastSettings = Field(default_factory=FeastSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    synthetic: SyntheticSettings = Field(default_factory=SyntheticSettings)
    churn: ChurnSettings = Field(default_factory=ChurnSettings)
    next_purchase: NextPurchaseSettings = Field(default_factory=NextPurchaseSettings)
    recommender: RecommenderSettings = Field(default_factory=RecommenderSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)
    warnings: WarningSettings = Field(default_factory=WarningSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)


class ConfigError(ValueError):
    """A configuration file is missing, not YAML, or fails validation."""


def load_settings(path: str | Path | None = None, workspace: str | Path | None = None) -> Settings:
    """Load and validate settings.

    ``path`` defaults to ``ECRM_CONFIG`` or ``configs/default.yaml``. ``workspace`` (or ``ECRM_WORKSPACE``)
    overrides the file's workspace. Errors name the file and the failing field.
    """
    path = Path(path or os.environ.get("ECRM_CONFIG") or DEFAULT_CONFIG_PATH)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    ws = workspace or os.environ.get("ECRM_WORKSPACE")
    if ws:
        raw["workspace"] = str(ws)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid configuration: {validation_problems(exc)}") from exc


def validation_problems(exc: ValidationError) -> str:
    """Each failing field of a settings validation as ``dotted.field: message``, joined by "; "."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
