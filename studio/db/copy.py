"""Copy a whole studio database to another one (SQLite → PostgreSQL, or any pair SQLAlchemy speaks).

The target must be empty. It is migrated to head with the studio's migrations; then every table is copied in
foreign-key order inside one transaction on the target (all or nothing). A foreign key that points forward
in that order (``lora_adapters.active_version_id`` → ``lora_versions``, added with ``use_alter``) is written
NULL first and filled in once its table is there. PostgreSQL's id sequences are then moved past the copied
ids, so new rows do not collide with them. Finally both sides are read again: row count and a SHA-256 of the
rows (in primary-key order, values as the studio's column types return them) per table, which must agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from studio.config import Settings
from studio.db import load_all_models
from studio.db.base import Base
from studio.db.engine import make_engine
from studio.db.migrate import current_revision, head_revision, upgrade
from studio.errors import ConflictError, ValidationError

BATCH_ROWS = 1000


@dataclass(frozen=True)
class TableSummary:
    """One table's row count and checksum on one side."""

    rows: int
    sha256: str


@dataclass(frozen=True)
class TableCopy:
    """One copied table: what the source and the target hold afterwards."""

    table: str
    source: TableSummary
    target: TableSummary

    @property
    def same(self) -> bool:
        return self.source == self.target


@dataclass(frozen=True)
class CopyReport:
    """The copy's outcome, table by table (foreign-key order)."""

    source: str
    target: str
    revision: str | None
    tables: tuple[TableCopy, ...]

    @property
    def identical(self) -> bool:
        return all(t.same for t in self.tables)


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def studio_tables() -> list[Table]:
    """Every studio table, parents before children."""
    load_all_models()
    return list(Base.metadata.sorted_tables)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot checksum a {type(value).__name__}")


def _ordered(table: Table):  # noqa: ANN202
    return select(table).order_by(*table.primary_key.columns)


def summarise(conn: Connection, table: Table) -> TableSummary:
    """Row count and SHA-256 of ``table``'s rows in primary-key order (one JSON line per row)."""
    digest = hashlib.sha256()
    rows = 0
    for row in conn.execute(_ordered(table)):
        line = json.dumps(list(row), default=_canonical, sort_keys=True, ensure_ascii=False)
        digest.update(line.encode() + b"\n")
        rows += 1
    return TableSummary(rows=rows, sha256=digest.hexdigest())


def _batches(conn: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    result = conn.execute(_ordered(table).execution_options(yield_per=BATCH_ROWS))
    for partition in result.mappings().partitions(BATCH_ROWS):
        yield [dict(row) for row in partition]


def _forward_keys(table: Table, copied: set[str]) -> list[str]:
    """Columns of ``table`` whose foreign key points at a table not copied yet (or at itself)."""
    return [
        fk.parent.name
        for fk in table.foreign_keys
        if fk.column.table.name not in copied or fk.column.table is table
    ]


def _non_empty_tables(engine: Engine) -> list[tuple[str, int]]:
    present = set(inspect(engine).get_table_names())
    found = []
    with engine.connect() as conn:
        for table in studio_tables():
            if table.name in present:
                count = conn.scalar(select(func.count()).select_from(table)) or 0
                if count:
                    found.append((table.name, count))
    return found


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: move each integer id's sequence past the highest copied id."""
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), COALESCE(MAX({column.name}), 1), "
                f"MAX({column.name}) IS NOT NULL) FROM {table.name}"
            ),
            {"table": table.name, "column": column.name},
        )


def _copy_rows(source: Connection, target: Connection, tables: list[Table]) -> None:
    copied: set[str] = set()
    later: list[tuple[Table, list[str], list[dict[str, Any]]]] = []
    for table in tables:
        forward = _forward_keys(table, copied)
        keys = [c.name for c in table.primary_key.columns]
        for batch in _batches(source, table):
            if forward:
                later.append((table, forward, [{k: row[k] for k in keys + forward} for row in batch]))
                batch = [{**row, **dict.fromkeys(forward)} for row in batch]
            try:
                target.execute(table.insert(), batch)
            except DBAPIError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                failed = f"copying table {table.name} failed (nothing was copied): {reason}"
                raise ConflictError(failed) from exc
        copied.add(table.name)
    for table, forward, rows in later:
        keys = [c for c in table.primary_key.columns]
        statement = (
            table.update()
            .where(*(c == bindparam(f"key_{c.name}") for c in keys))
            .values({name: bindparam(f"value_{name}") for name in forward})
        )
        params = [
            {**{f"key_{c.name}": row[c.name] for c in keys}, **{f"value_{n}": row[n] for n in forward}}
            for row in rows
            if any(row[n] is not None for n in forward)
        ]
        if params:
            target.execute(statement, params)


def copy_database(settings: Settings, source_url: str, target_url: str) -> CopyReport:
    """Copy every studio table from ``source_url`` to the empty ``target_url`` (migrated to head first).

    Refuses a source that is missing or not at the migrations' head, and a target that holds rows."""
    if source_url == target_url:
        raise ValidationError("--to", "the target is the source database")
    source_settings = dataclasses.replace(settings, database_url=source_url)
    target_settings = dataclasses.replace(settings, database_url=target_url)
    path = source_settings.sqlite_path
    if path is not None and not Path(path).is_file():
        raise ValidationError("--from", f"no SQLite database file at {path}")
    head = head_revision(settings)
    at = current_revision(source_settings)
    if at != head:
        raise ConflictError(
            f"the source {display_url(source_url)} is at revision {at or 'empty'}, not {head}: "
            "run `studio db upgrade` on it first"
        )
    target = make_engine(target_url)
    source = make_engine(source_url)
    try:
        non_empty = _non_empty_tables(target)
        if non_empty:
            tables = ", ".join(f"{name} ({count} rows)" for name, count in non_empty)
            raise ConflictError(
                f"the target {display_url(target_url)} is not empty: {tables}; "
                "copy only into an empty database"
            )
        upgrade(target_settings)
        tables = studio_tables()
        with source.connect() as read, target.begin() as write:
            _copy_rows(read, write, tables)
            if target.dialect.name == "postgresql":
                _reset_sequences(write, tables)
        with source.connect() as read, target.connect() as written:
            summaries = tuple(
                TableCopy(table.name, summarise(read, table), summarise(written, table)) for table in tables
            )
    finally:
        source.dispose()
        target.dispose()
    return CopyReport(
        source=display_url(source_url), target=display_url(target_url), revision=head, tables=summaries
    )
