"""Done-markers: how big-table writes become idempotent without merging big tables.

A producer (an extractor or a lifter) writes all rows of one item (a video, a clip) as one
append commit, then a marker row in the small ``markers`` table. On a re-run:
- a marker exists: the item is finished, skip it;
- no marker but rows exist: a crash fell between the two commits; delete those rows (a delete
  touches only the files holding that item, which appends keep separate) and redo the item.
Rows are never half-written: an append is one Delta commit, or nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from videomdm.storage.lake import Lake, conform, rows_to_table, utcnow
from videomdm.storage.schemas import spec

log = logging.getLogger(__name__)

DONE, NO_PERSON, FAILED = "done", "no_person", "failed"
TOO_SHORT = "too_short"  # people were tracked, but no track was long enough to keep
FINISHED = (DONE, NO_PERSON, TOO_SHORT)


@dataclass(frozen=True)
class Marker:
    table_name: str
    item_id: str
    producer: str
    status: str
    rows: int | None
    error: str | None


def _sql_str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def markers(lake: Lake, table: str, producer: str | None = None) -> dict[tuple[str, str], Marker]:
    """Markers of ``table`` keyed by (item_id, producer)."""
    t = lake.read("markers").to_pylist()
    return {
        (r["item_id"], r["producer"]): Marker(
            r["table_name"], r["item_id"], r["producer"], r["status"], r["rows"], r["error"]
        )
        for r in t
        if r["table_name"] == table and (producer is None or r["producer"] == producer)
    }


def latest_producer(
    lake: Lake, table: str, item_id: str | None = None, statuses: tuple[str, ...] = FINISHED
) -> str | None:
    """The producer that most recently finished an item of ``table`` (this item, or any)."""
    from videomdm.storage.query import run_sql

    t = run_sql(
        lake,
        "select producer from markers where table_name = ? and list_contains(?, status) "
        "and (? is null or item_id = ?) order by updated_at desc limit 1",
        params=[table, list(statuses), item_id, item_id],
    )
    return t.column("producer")[0].as_py() if t.num_rows else None


@contextlib.contextmanager
def claim(lake: Lake, table: str, item_id: str, producer: str) -> Iterator[Marker | None]:
    """Hold one item while producing it; yields its finished marker when another run finished
    it meanwhile (then produce nothing), else None.

    Without it two runs at once would both find no marker and both append the item's rows, and
    one run's ``clear_unmarked`` could delete the other's rows between its data and its marker.
    """
    with lake.item_lock(table, f"{item_id}|{producer}"):
        found = markers(lake, table, producer).get((item_id, producer))
        yield found if found is not None and found.status in FINISHED else None


def set_marker(
    lake: Lake,
    table: str,
    item_id: str,
    producer: str,
    status: str,
    rows: int = 0,
    data_version: int | None = None,
    error: str | None = None,
    flow_run_id: str | None = None,
) -> None:
    row = dict(
        table_name=table,
        item_id=item_id,
        producer=producer,
        status=status,
        rows=rows,
        data_version=data_version,
        error=error,
        updated_at=utcnow(),
    )
    lake.merge(
        "markers",
        rows_to_table("markers", [row]),
        operation=f"mark.{status}",
        metadata={"flow_run_id": flow_run_id, "table": table, "item": item_id},
    )


def clear_unmarked(
    lake: Lake, table: str, id_column: str, item_id: str, producer_column: str, producer: str
) -> None:
    """Delete rows a crash left between the data commit and its marker."""
    if lake.table(table) is None:
        return
    pred = f"{id_column} = {_sql_str(item_id)} AND {producer_column} = {_sql_str(producer)}"
    lake.delete(table, pred, operation="clear-unmarked")


class _Counter:
    def __init__(self) -> None:
        self.rows = 0
        self.error: BaseException | None = None


def append_item(
    lake: Lake,
    table: str,
    batches: Iterable[pa.Table | pa.RecordBatch],
    operation: str,
    metadata: dict[str, str | None] | None = None,
) -> tuple[int, int | None]:
    """Stream one item's batches into ``table`` as a single commit; (rows, version).

    Nothing is committed when the iterator raises, or when it yields no rows.
    """
    s = spec(table)
    it = iter(batches)
    first = _next_nonempty(it)
    if first is None:
        return 0, None
    counter = _Counter()

    def gen() -> Iterator[pa.RecordBatch]:
        try:
            for b in _chain(first, it):
                t = conform(s, pa.table(b) if isinstance(b, pa.RecordBatch) else b)
                counter.rows += t.num_rows
                yield from t.to_batches()
        except BaseException as e:  # the Rust writer wraps it; keep the original for the caller
            counter.error = e
            raise

    reader = pa.RecordBatchReader.from_batches(s.schema, gen())
    try:
        version = lake.append(table, reader, operation=operation, metadata=metadata)
    except Exception:
        if counter.error is not None:
            raise counter.error from None
        raise
    return counter.rows, version


def _next_nonempty(it: Iterator) -> pa.Table | pa.RecordBatch | None:
    for b in it:
        if b.num_rows:
            return b
    return None


def _chain(first, it):
    yield first
    for b in it:
        if b.num_rows:
            yield b
