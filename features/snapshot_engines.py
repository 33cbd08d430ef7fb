"""The engines that run the feature-snapshot SQL (``features/repo/*.sql``): DuckDB, or Spark SQL when the
Feast offline store is configured as ``spark``.

A view's SQL file is written in DuckDB SQL as a sequence of named steps (see :func:`load_view_sql`):
the steps before ``snapshot`` do not depend on the cutoffs and are materialized once as tables under their
names (a step marked ``when scoped`` only for a sample of customers; for everyone it is a view of its
query, so that no copy of a whole table is made); ``snapshot`` is run for each batch of cutoffs (the
``cutoffs`` relation). DuckDB runs the text as it is; Spark runs it translated by sqlglot
(:func:`to_spark_sql`), so both compute the same features from the same files. pyspark is imported only
when a Spark engine is created.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

STEP_MARKER = re.compile(r"^--\s*step:\s*(\S+)(\s+when scoped)?\s*$", re.MULTILINE)
SNAPSHOT_STEP = "snapshot"
CUTOFFS = "cutoffs"
# A line ending in the comment "scope" restricts the query to the customers of the table CUSTOMER_SCOPE; it
# is dropped when the snapshots are computed for every customer (see load_view_sql).
SCOPE_LINE = re.compile(r"^[^\n]*--\s*scope[ \t]*(?:\n|$)", re.MULTILINE)
CUSTOMER_SCOPE = "customer_scope"
# What DuckDB may hold in memory before it spills to its temporary folder (its default is 80% of the RAM,
# which a shared machine does not have to spare); ECRM_DUCKDB_MEMORY_LIMIT overrides it.
DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"
MEMORY_LIMIT_ENV = "ECRM_DUCKDB_MEMORY_LIMIT"

TableSource = pd.DataFrame | Path


class SnapshotSqlError(ValueError):
    """A snapshot SQL file is malformed, or one of its steps failed on the engine; names the file and step."""


@dataclass(frozen=True)
class SqlStep:
    """One named query of a view's SQL file; ``stored``: materialized as a table (else defined as a view)."""

    name: str
    sql: str
    stored: bool = True


@dataclass(frozen=True)
class ViewSql:
    """A view's SQL file: steps materialized once (in order), then the per-batch ``snapshot`` query."""

    path: Path
    prepare: tuple[SqlStep, ...]
    snapshot: SqlStep
    inputs: tuple[str, ...]  # the tables it reads besides its own steps and ``cutoffs``


def _tables_read(sql: str) -> set[str]:
    """Names of the tables a query reads (common table expressions excluded)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table)} - ctes


def load_view_sql(path: Path, scoped: bool = False) -> ViewSql:
    """Parse a snapshot SQL file: queries introduced by ``-- step: NAME`` lines, the last one named
    ``snapshot``. Only ``snapshot`` may read ``cutoffs``: the other steps are computed once for all cutoffs.
    A step introduced by ``-- step: NAME when scoped`` is stored only when ``scoped`` (it holds the sample's
    rows, which each batch of cutoffs then reads instead of the whole table); otherwise it is a view.

    Lines ending in ``-- scope`` restrict the features to the customers in table ``customer_scope`` (the
    training sample of a large shop). ``scoped=False`` drops them, so the query for every customer pays
    nothing for the option; ``scoped=True`` keeps them, and the file must have some.

    Raises :class:`SnapshotSqlError` naming the file and step when the structure is wrong.
    """
    text = Path(path).read_text()
    if scoped and not SCOPE_LINE.search(text):
        raise SnapshotSqlError(f"{path}: no line ending in '-- scope': its features cannot be computed for a "
                               "subset of customers")
    if not scoped:
        text = SCOPE_LINE.sub("", text)
    marks = list(STEP_MARKER.finditer(text))
    if not marks:
        raise SnapshotSqlError(f"{path}: no '-- step: NAME' line; the last step must be '-- step: {SNAPSHOT_STEP}'")
    steps = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end():end].strip().rstrip(";").strip()
        if not re.sub(r"--[^\n]*", "", body).strip():
            raise SnapshotSqlError(f"{path}: step '{mark.group(1)}' has no query")
        steps.append(SqlStep(mark.group(1), body, stored=scoped or not mark.group(2)))
    names = [s.name for s in steps]
    if marks[-1].group(2):
        raise SnapshotSqlError(f"{path}: the '{SNAPSHOT_STEP}' step cannot be marked 'when scoped'")
    if names[-1] != SNAPSHOT_STEP or names.count(SNAPSHOT_STEP) != 1:
        raise SnapshotSqlError(f"{path}: the last step, and only it, must be '{SNAPSHOT_STEP}' (steps: {names})")
    if len(set(names)) != len(names):
        raise SnapshotSqlError(f"{path}: duplicate step names in {names}")
    inputs: set[str] = set()
    for step in steps:
        try:
            reads = _tables_read(step.sql)
        except Exception as exc:  # sqlglot's parse errors carry the position
            raise SnapshotSqlError(f"{path}: step '{step.name}' does not parse: {exc}") from exc
        if CUTOFFS in reads and step.name != SNAPSHOT_STEP:
            raise SnapshotSqlError(f"{path}: step '{step.name}' reads '{CUTOFFS}'; only the '{SNAPSHOT_STEP}' step "
                                   "may (the others are computed once for every cutoff)")
        inputs |= reads - set(names) - {CUTOFFS}
    return ViewSql(Path(path), tuple(steps[:-1]), steps[-1], tuple(sorted(inputs)))


def to_spark_sql(sql: str, where: str) -> str:
    """Translate one DuckDB query of the snapshot SQL to Spark SQL with sqlglot, keeping DuckDB's results.

    Two DuckDB meanings need help: ``date_diff('second', a, b)`` counts second boundaries (Spark's
    DATEDIFF counts whole elapsed seconds), so it becomes ``unix_seconds(b) - unix_seconds(a)``; and
    decimal literals such as ``86400.0`` are DECIMAL in Spark (rounded divisions and averages) but give
    DOUBLE arithmetic in DuckDB, so they become DOUBLE. ``where`` (file and step) names the query in errors.
    """
    import sqlglot
    from sqlglot import exp

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DateDiff):
            unit = node.args.get("unit")
            if unit is None or unit.name.upper() != "SECOND":
                raise SnapshotSqlError(f"{where}: date_diff with unit {unit.name if unit else None!r} has no "
                                       "Spark translation here; use 'second'")
            end, start = exp.func("unix_seconds", node.this), exp.func("unix_seconds", node.expression)
            return exp.paren(exp.Sub(this=end, expression=start), copy=False)
        if isinstance(node, exp.Literal) and node.is_number and re.search(r"[.eE]", node.this):
            return exp.cast(node.copy(), "DOUBLE")
        return node

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        return tree.transform(rewrite).sql(dialect="spark")
    except sqlglot.errors.SqlglotError as exc:
        raise SnapshotSqlError(f"{where}: cannot translate to Spark SQL: {exc}") from exc


class SnapshotEngine(Protocol):
    """What :func:`features.snapshots.compute_view` needs from an engine."""

    name: str

    def register(self, name: str, source: TableSource, columns: Sequence[str] | None = None) -> None:
        """Make ``source`` (a frame or a parquet file) readable as table ``name`` (only ``columns`` if given)."""

    def set_cutoffs(self, cutoffs: Sequence[pd.Timestamp]) -> None:
        """Make the relation ``cutoffs(cutoff)`` hold these UTC timestamps."""

    def materialize(self, step: SqlStep, where: str) -> None:
        """Run a preparing step once and keep its result as table ``step.name``."""

    def define(self, step: SqlStep, where: str) -> None:
        """Make ``step.name`` a view of the step's query (computed by the queries that read it)."""

    def query(self, step: SqlStep, where: str) -> pd.DataFrame:
        """Run a query; timestamps come back as ``datetime64[us, UTC]``."""

    def drop(self, names: Sequence[str]) -> None:
        """Forget materialized or defined steps (frees their memory)."""

    def close(self) -> None:
        """Release the engine's resources."""


class DuckDBEngine:
    """DuckDB in this process: parquet files are read in place, pandas frames are registered as they are.

    ``memory_limit`` (default :data:`DEFAULT_DUCKDB_MEMORY_LIMIT`, or ``$ECRM_DUCKDB_MEMORY_LIMIT``) caps
    DuckDB's buffer memory, beyond which it spills to a fresh temporary folder inside ``temp_parent``
    (the system's temporary folder when None), removed on close.
    """

    name = "duckdb"

    def __init__(self, temp_parent: Path | None = None, memory_limit: str | None = None) -> None:
        import duckdb

        memory_limit = memory_limit or os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_DUCKDB_MEMORY_LIMIT
        self.temp_dir = _fresh_temp_dir(temp_parent, "duckdb-")
        config = {"memory_limit": memory_limit, "temp_directory": str(self.temp_dir),
                  "preserve_insertion_order": False}  # results are sorted afterwards
        try:
            self.con = duckdb.connect(config=config)
        except duckdb.Error as exc:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            raise ValueError(f"DuckDB settings {config} (memory limit from ${MEMORY_LIMIT_ENV} or the "
                             f"default): {exc}") from exc
        self.con.execute("SET TimeZone = 'UTC'")
        self._steps: dict[str, str] = {}  # step name -> TABLE or VIEW

    def register(self, name: str, source: TableSource, columns: Sequence[str] | None = None) -> None:
        """Table ``name``: a frame, an Arrow table (DuckDB only) or a parquet file, optionally only ``columns``."""
        import pyarrow as pa

        cols = ", ".join(columns) if columns else "*"
        if isinstance(source, (pd.DataFrame, pa.Table)):
            if columns:
                source = source.select(list(columns)) if isinstance(source, pa.Table) else source[list(columns)]
            self.con.register(f"{name}_frame", source)
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols} FROM {name}_frame")
        else:
            path = str(source).replace("'", "''")
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols} FROM read_parquet('{path}')")

    def set_cutoffs(self, cutoffs: Sequence[pd.Timestamp]) -> None:
        frame = pd.DataFrame({"cutoff": pd.Series(list(cutoffs), dtype="datetime64[us, UTC]")})
        self.con.register(CUTOFFS, frame)

    def _run(self, sql: str, where: str):
        """Execute ``sql``; a DuckDB error names the file and step."""
        import duckdb

        try:
            return self.con.execute(sql)
        except duckdb.Error as exc:
            raise SnapshotSqlError(f"{where} failed on DuckDB: {exc}") from exc

    def materialize(self, step: SqlStep, where: str) -> None:
        self._run(f"CREATE OR REPLACE TEMP TABLE {step.name} AS {step.sql}", where)
        self._steps[step.name] = "TABLE"

    def define(self, step: SqlStep, where: str) -> None:
        self._run(f"CREATE OR REPLACE TEMP VIEW {step.name} AS {step.sql}", where)
        self._steps[step.name] = "VIEW"

    def query(self, step: SqlStep, where: str) -> pd.DataFrame:
        return self._run(step.sql, where).df()

    def drop(self, names: Sequence[str]) -> None:
        for name in names:
            if kind := self._steps.pop(name, None):
                self.con.execute(f"DROP {kind} IF EXISTS {name}")

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _fresh_temp_dir(parent: Path | None, prefix: str) -> Path:
    """A new empty folder inside ``parent`` (created if needed; the system's temporary folder if None)."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def spark_session(spark_conf: dict[str, str]):
    """The active Spark session, or a new one from ``spark_conf`` (as Feast's Spark offline store does, so
    both share one session and one JVM in a process)."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as exc:  # an optional extra: say how to get it
        from configs.settings import ConfigError

        raise ConfigError("feast.offline_store.type is 'spark' but pyspark is not installed: run "
                          "`make install-spark`, i.e. `uv sync --frozen --extra spark`") from exc

    session = SparkSession.getActiveSession()
    if session is None:
        session = SparkSession.builder.config(conf=SparkConf().setAll(list(spark_conf.items()))).getOrCreate()
    tz = session.conf.get("spark.sql.session.timeZone")
    if tz not in ("UTC", "Etc/UTC"):
        from configs.settings import ConfigError

        raise ConfigError(f"the Spark session's spark.sql.session.timeZone is {tz!r}; snapshot times need UTC")
    return session


class SparkEngine:
    """Spark SQL through pyspark (the session of ``spark_conf``). Parquet files are read by Spark itself, so
    on a cluster they must be on storage the executors read; frames are first written to parquet in a
    fresh folder inside ``temp_parent``, removed on close. Materialized steps are cached (memory and
    disk) temporary views."""

    name = "spark"

    def __init__(self, spark_conf: dict[str, str], temp_parent: Path | None = None) -> None:
        self.spark = spark_session(spark_conf)
        self.temp_dir = _fresh_temp_dir(temp_parent, "spark-")
        self._cached: dict[str, object] = {}  # step name -> persisted Spark DataFrame
        self._views: list[str] = []
        self._files = 0

    def _view(self, name: str, frame) -> None:
        frame.createOrReplaceTempView(name)
        self._views.append(name)

    def register(self, name: str, source: TableSource, columns: Sequence[str] | None = None) -> None:
        if isinstance(source, pd.DataFrame):  # a new file each time: Spark caches what it has listed
            self._files += 1
            path = self.temp_dir / f"{name}-{self._files}.parquet"
            (source[list(columns)] if columns else source).to_parquet(path, index=False)
            source = path
        frame = self.spark.read.parquet(str(source))
        self._view(name, frame.select(*columns) if columns else frame)

    def set_cutoffs(self, cutoffs: Sequence[pd.Timestamp]) -> None:
        rows = [(pd.Timestamp(c).to_pydatetime(),) for c in cutoffs]
        self._view(CUTOFFS, self.spark.createDataFrame(rows, "cutoff TIMESTAMP"))

    @contextmanager
    def _named(self, where: str) -> Iterator[None]:
        """Turn a Spark error (of the query's analysis or its run) into one naming the file and step."""
        from pyspark.errors import PySparkException

        try:
            yield
        except PySparkException as exc:
            raise SnapshotSqlError(f"{where} failed on Spark: {exc}") from exc

    def materialize(self, step: SqlStep, where: str) -> None:
        from pyspark import StorageLevel

        with self._named(where):
            frame = self.spark.sql(to_spark_sql(step.sql, where)).persist(StorageLevel.MEMORY_AND_DISK)
            frame.count()  # compute it now, once
        self._cached[step.name] = frame
        self._view(step.name, frame)

    def define(self, step: SqlStep, where: str) -> None:
        with self._named(where):
            self._view(step.name, self.spark.sql(to_spark_sql(step.sql, where)))

    def query(self, step: SqlStep, where: str) -> pd.DataFrame:
        from pyspark.sql import functions as F
        from pyspark.sql.types import TimestampType

        with self._named(where):
            frame = self.spark.sql(to_spark_sql(step.sql, where))
            stamps = [f.name for f in frame.schema.fields if isinstance(f.dataType, TimestampType)]
            # timestamps travel as microseconds since the epoch (toPandas would shift them to the local zone)
            frame = frame.select(*[F.unix_micros(F.col(c)).alias(c) if c in stamps else F.col(c)
                                   for c in frame.columns])
            out = frame.toPandas()
        for c in stamps:
            out[c] = pd.to_datetime(out[c], unit="us", utc=True).astype("datetime64[us, UTC]")
        return out

    def drop(self, names: Sequence[str]) -> None:
        for name in names:
            frame = self._cached.pop(name, None)
            if frame is not None:
                frame.unpersist()
            self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        self.drop(list(self._cached))
        for name in set(self._views):
            self.spark.catalog.dropTempView(name)
        self._views.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
