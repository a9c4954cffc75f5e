"""Issue 20's load benchmark on both databases (``benchmarks/load_generate.py --databases sqlite,postgres``):
the option is checked, a run's studio is prepared in a fresh PostgreSQL database and its image rows read back
from there, and the figures of each database are printed side by side. (The load itself is the benchmark's
to run: minutes.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

BENCHMARKS = str(Path(__file__).resolve().parents[2] / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)

import load_databases  # noqa: E402
import load_generate  # noqa: E402
import load_queue  # noqa: E402


def test_the_databases_option_takes_sqlite_and_postgres_and_names_itself_when_wrong() -> None:
    assert load_databases.parse_databases("sqlite, PostgreS") == ["sqlite", "postgres"]
    for wrong in ("", "mysql", "sqlite,sqlite"):
        with pytest.raises(SystemExit, match="--databases"):
            load_databases.parse_databases(wrong)


@pytest.mark.postgres
def test_a_run_is_prepared_in_a_fresh_postgres_database_and_its_images_are_read_there(
    postgres_server: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = postgres_server.fresh_database()
    try:
        load_generate.prepare(home, 2, url)
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                users = connection.execute(text("SELECT username FROM users ORDER BY username")).scalars()
                assert list(users) == ["user00", "user01"]
        finally:
            engine.dispose()
        assert load_generate.image_rows(home, url) == []
        assert not (home / "studio.db").exists()  # nothing went to a SQLite file beside it
    finally:
        postgres_server.drop_database(url)


def figures(label: str, rate: float, waits: list[float], problems: list[str] | None = None) -> Any:
    return load_queue.Figures(label, rate, 1.0, 2.0, 8, 8, problems or [], waits)


def test_each_databases_figures_are_printed_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    runs = {
        "sqlite": [figures("inline", 1.0, [1.0, 1.0]), figures("queue 2w", 1.5, [1.0, 3.0])],
        "postgres": [figures("inline", 1.0, [2.0, 2.0]), figures("queue 2w", 2.0, [2.0, 2.0], ["lost 1"])],
    }
    assert load_queue.load_table(runs, 2) is True  # a problem on one side: the run fails
    fair = {"sqlite": ([1.0, 2.0], [1.0, 3.0], []), "postgres": ([1.0, 2.0], [2.0, 2.0], [])}
    assert load_queue.fairness_table(fair) is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["inline", "sqlite", "queue", "2w", "sqlite", "inline", "postgres", "queue",
                                "2w", "postgres"]  # fmt: skip
    cells: dict[str, list[str]] = {}  # each row's label → its cells (the first table's, where both have it)
    for line in lines:
        cells.setdefault(line[:32].strip(), line[32:].split())
    assert cells["throughput (images/s)"] == ["1.00", "1.50", "1.00", "2.00"]
    assert cells["per-user fairness (Jain)"] == ["1.000", "0.800", "1.000", "1.000"]
    assert cells["lost or duplicated"] == ["none", "none", "none", "YES"]
    assert "queue (2 workers) / inline throughput: sqlite x1.50 · postgres x2.00" in lines
    assert cells["p95 ratio with/without (<=1.5)"] == ["x1.50", "x1.00"]
