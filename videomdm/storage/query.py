"""DuckDB over the lake: every table a view on ``read_parquet(<the snapshot's file list>)``.

Measured on 10M rows: as fast as a raw Parquet scan, while DuckDB over
``DeltaTable.to_pyarrow_dataset()`` was 1.2-4x slower and 94x on a selective query.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import duckdb
import pyarrow as pa

from videomdm.errors import UserError
from videomdm.storage.lake import Lake
from videomdm.storage.schemas import TABLES, TableSpec

log = logging.getLogger(__name__)

# What `videomdm sql` runs; anything else (DELETE, CREATE, COPY, ATTACH, PRAGMA...) is refused.
READ_ONLY_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class ReadOnlyError(UserError):
    """A statement that would write; the lake changes only through the pipeline."""


def connect(lake: Lake, at: Mapping[str, int] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per lake table.

    ``at`` pins tables to past versions (``{"videos": 3}``); the others are at their latest.
    """
    at = dict(at or {})
    unknown = set(at) - set(TABLES)
    if unknown:
        raise UserError(f"unknown table(s) {sorted(unknown)}; valid tables: {', '.join(TABLES)}")
    con = duckdb.connect()
    if not lake.local:
        _enable_object_store(con, lake)
    for name, s in TABLES.items():
        version = at.get(name)
        try:
            files = lake.files(name, version)
        except Exception as e:  # a version that does not exist
            raise UserError(f"table {name} has no version {version}: {e}") from None
        if version is not None and not files and lake.version(name) is None:
            raise UserError(f"table {name} does not exist yet, so it has no version {version}")
        _create_view(con, s, files)
    return con


def _create_view(con: duckdb.DuckDBPyConnection, s: TableSpec, files: list[str]) -> None:
    casts = ", ".join(f"CAST({c} AS FLOAT[{n}]) AS {c}" for c, n in s.fixed_sizes.items())
    select = f"* REPLACE ({casts})" if casts else "*"
    if files:
        file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        src = f"read_parquet([{file_list}], union_by_name=true)"
    else:  # an empty or missing table still has its columns and types
        con.register(f"__empty_{s.name}", s.schema.empty_table())
        src = f"__empty_{s.name}"
    con.execute(f'CREATE OR REPLACE VIEW "{s.name}" AS SELECT {select} FROM {src}')


def _enable_object_store(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """Object-store lakes: httpfs plus a secret built from the same storage options."""
    con.execute("INSTALL httpfs; LOAD httpfs;")
    opts = {k.upper(): v for k, v in (lake.storage_options or {}).items()}
    if lake.root.startswith("s3://"):
        parts = ["TYPE s3", "PROVIDER credential_chain"]
        if "AWS_ACCESS_KEY_ID" in opts:
            parts = [
                "TYPE s3",
                f"KEY_ID '{opts['AWS_ACCESS_KEY_ID']}'",
                f"SECRET '{opts.get('AWS_SECRET_ACCESS_KEY', '')}'",
            ]
        if "AWS_REGION" in opts:
            parts.append(f"REGION '{opts['AWS_REGION']}'")
        if "AWS_ENDPOINT_URL" in opts:
            endpoint = opts["AWS_ENDPOINT_URL"].split("://")[-1]
            parts += [f"ENDPOINT '{endpoint}'", "URL_STYLE 'path'"]
            if opts["AWS_ENDPOINT_URL"].startswith("http://"):
                parts.append("USE_SSL false")
        con.execute(f"CREATE SECRET lake ({', '.join(parts)})")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise UserError(f"SQL does not parse: {e}") from None
    if not statements:
        raise UserError("no SQL statement given")
    for st in statements:
        if st.type not in READ_ONLY_STATEMENTS:
            kind = st.type.name
            raise ReadOnlyError(
                f"{kind} statements are refused: `videomdm sql` is read-only "
                "(SELECT, WITH ... SELECT, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN are allowed); "
                "the lake changes only through the pipeline commands"
            )


def run_sql(
    lake: Lake, sql: str, at: Mapping[str, int] | None = None, params: list | None = None
) -> pa.Table:
    """Run read-only SQL (``?`` placeholders bound to ``params``) and return Arrow."""
    con = connect(lake, at)
    check_read_only(con, sql)
    try:
        return con.sql(sql, params=params).to_arrow_table()
    except duckdb.Error as e:
        raise UserError(f"query failed: {e}") from None
    finally:
        con.close()
