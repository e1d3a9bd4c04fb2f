"""The results history in SQLite and in a real PostgreSQL server: locations, migrations, concurrent benches,
provenance, browsing (``history list|show|export|record``), gate baselines, and passwords that never show."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from edgeprune.cli import main
from edgeprune.errors import UsageError
from edgeprune.history.location import history_location, parse_location
from edgeprune.history.migrate import head_revision
from edgeprune.history.schema import metadata
from edgeprune.history.store import History
from edgeprune.results.document import read_results
from edgeprune.results.provenance import collect_provenance
from fixtures.postgres import PASSWORD, free_port

SECRET_HOST_URL = "postgresql://ci:Hunter2-secret@db.example:5433/edge"
OLD_SCHEMA = """
CREATE TABLE benches (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT, created TEXT NOT NULL, results_path TEXT,
                      header TEXT NOT NULL);
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, bench_id INTEGER NOT NULL REFERENCES benches(id),
                   device TEXT NOT NULL, model TEXT NOT NULL, variant TEXT NOT NULL, threads INTEGER,
                   xnnpack INTEGER NOT NULL, status TEXT NOT NULL, p50_ms REAL, size_bytes INTEGER, top1 REAL,
                   record TEXT NOT NULL);
CREATE INDEX benches_by_label ON benches(label, id);
CREATE INDEX runs_by_bench ON runs(bench_id);
"""
BENCH_ARGS = ["--runs", "3", "--warmup", "0", "--rounds", "1"]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("edgeprune: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def bench_into(capsys, history: str, tflite: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "bench", str(tflite), *BENCH_ARGS, "-o", "results.json", "--history", history, *extra)


# --- where the history is ---------------------------------------------------------------------------------------

def test_history_locations_and_their_display():
    assert parse_location("ci/history", "--history").display == "ci/history/history.sqlite"
    assert parse_location("sqlite:///x/h.sqlite", "--history").display == "x/h.sqlite"
    server = parse_location(SECRET_HOST_URL + "?sslmode=require", "--history")
    assert server.sqlite_path is None and server.url.drivername == "postgresql+psycopg"
    assert server.display == "postgresql+psycopg://ci:***@db.example:5433/edge?sslmode=require"
    assert history_location(None, {"EDGEPRUNE_HISTORY": "from-env"}).display == "from-env/history.sqlite"
    assert history_location("option", {"EDGEPRUNE_HISTORY": "from-env"}).display == "option/history.sqlite"
    assert history_location(None, {}).display == ".edgeprune/history.sqlite"


@pytest.mark.parametrize("text, message", [
    ("mysql://root:Hunter2-secret@db/x", "--history: 'mysql://' is not a history this edgeprune can use"),
    ("postgresql://ci:Hunter2-secret@db:notaport/x", "--history: not a valid database URL (ValueError)"),
    ("postgresql://ci:Hunter2-secret@db", "--history: postgresql+psycopg://ci:***@db names no database"),
    ("postgresql://ci:Hunter2-secret@db/x?sslmod=require", "unknown connection parameter sslmod"),
    ("sqlite://", "a SQLite history is sqlite:///PATH"),
])
def test_unusable_locations_are_refused_without_the_password(text, message):
    with pytest.raises(UsageError) as refused:
        parse_location(text, "--history")
    assert message in str(refused.value) and "Hunter2" not in str(refused.value)


# --- the schema and its migrations -------------------------------------------------------------------------------

def test_migrations_build_exactly_the_tables_of_the_schema(tmp_path, postgres_history):
    for location in (parse_location(str(tmp_path), "--history"), parse_location(postgres_history, "--history")):
        History(location).close()
        engine = create_engine(location.url)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head_revision()
            assert compare_metadata(MigrationContext.configure(connection), metadata) == [], location.display
        engine.dispose()


def test_an_old_sqlite_history_upgrades_in_place_and_keeps_its_benches(isolated_cwd, capsys):
    Path(".edgeprune").mkdir()
    with sqlite3.connect(".edgeprune/history.sqlite") as old:
        old.executescript(OLD_SCHEMA)
        old.execute("INSERT INTO benches (label, created, header) VALUES ('main', '2025-01-01T00:00:00+00:00', ?)",
                    (json.dumps({"schema_version": 1, "kind": "edgeprune.results", "created": "2025-01-01T00:00:00+00:00",
                                 "settings": {}, "label": "main"}),))
    old.close()

    code, out, _ = cli(capsys, "history", "list", "--json")

    assert code == 0 and [(bench["id"], bench["label"], bench["git_commit"]) for bench in json.loads(out)] == [
        (1, "main", None)]
    with sqlite3.connect(".edgeprune/history.sqlite") as upgraded:
        assert upgraded.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
        assert "git_commit" in {row[1] for row in upgraded.execute("PRAGMA table_info(benches)")}
    upgraded.close()


def test_a_history_newer_than_this_edgeprune_is_refused(isolated_cwd, capsys, postgres_history):
    for history in (".edgeprune", postgres_history):
        History(parse_location(history, "--history")).close()
        engine = create_engine(parse_location(history, "--history").url)
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        engine.dispose()

        code, out, err = cli(capsys, "history", "list", "--history", history)

        assert code == 2 and out == ""
        assert "has schema revision 9999, newer than this edgeprune's" in error_line(err)
        assert "upgrade edgeprune" in err and PASSWORD not in err


# --- benches into PostgreSQL ---------------------------------------------------------------------------------------

def git_repository(folder: Path) -> str:
    """A repository with one commit on branch 'release', checked out in ``folder``; its commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com",
                               *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "release")
    (folder / "README").write_text("model repo\n", encoding="utf-8")
    git("add", "README")
    git("commit", "-q", "-m", "first")
    return git("rev-parse", "HEAD")


def test_provenance_reads_git_files_and_never_runs_git(tmp_path):
    commit = git_repository(tmp_path)
    # A checkout prepared by someone else: its config would run a program for any git command that reads the index.
    subprocess.run(["git", "-C", str(tmp_path), "config", "core.fsmonitor", f"touch {tmp_path / 'pwned'}"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "pack-refs", "--all"], check=True)  # the branch only in packed-refs
    (tmp_path / "src").mkdir()

    provenance = collect_provenance(tmp_path / "src", {})

    assert (provenance["git_commit"], provenance["git_branch"]) == (commit, "release")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / ".git" / "HEAD").write_text(commit + "\n", encoding="utf-8")  # detached, as CI checks out
    assert collect_provenance(tmp_path, {})["git_branch"] is None
    hostile = collect_provenance(tmp_path, {"GITHUB_REF_NAME": "main\x1b[2J" + "x" * 500})["ci_ref"]
    assert hostile == "main" + "x" * 193 + "..."  # one printable line of at most 200 characters


@pytest.mark.slow
def test_a_bench_in_postgresql_records_its_provenance_and_comes_back_out(isolated_cwd, capsys, monkeypatch,
                                                                          tiny_tflite, postgres_history):
    commit = git_repository(isolated_cwd)
    ci = {"GITHUB_SHA": "f" * 40, "GITHUB_REF_NAME": "release", "GITHUB_RUN_ID": "4242",
          "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "team/models"}
    for name, value in ci.items():
        monkeypatch.setenv(name, value)

    code, _, _ = bench_into(capsys, postgres_history, tiny_tflite, "--label", "main")

    assert code == 0
    provenance = json.loads(Path("results.json").read_text())["provenance"]
    assert provenance["git_commit"] == commit and provenance["git_branch"] == "release"
    assert provenance["ci_run_url"] == "https://github.com/team/models/actions/runs/4242"
    assert provenance["ci_commit"] == "f" * 40 and provenance["ci_run_id"] == "4242" and provenance["host"]
    code, out, _ = cli(capsys, "history", "list", "--history", postgres_history, "--label", "main", "--json")
    [listed] = json.loads(out)
    assert code == 0 and listed["git_commit"] == commit and listed["git_branch"] == "release"
    assert listed["runs"] == listed["ok_runs"] == 1
    code, out, _ = cli(capsys, "history", "show", str(listed["id"]), "--history", postgres_history)
    assert code == 0 and "ci_run_url: https://github.com/team/models/actions/runs/4242" in out and "fp32" in out

    code, out, _ = cli(capsys, "history", "export", str(listed["id"]), "--history", postgres_history,
                       "-o", "exported.json")

    assert code == 0 and out.startswith("wrote exported.json")
    assert read_results(Path("exported.json")) == read_results(Path("results.json"))
    Path("policy.toml").write_text("[defaults]\nmax_regression_pct = 1000\n", encoding="utf-8")
    monkeypatch.setenv("EDGEPRUNE_HISTORY", postgres_history)
    code, out, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--baseline", "history:main")
    # The baseline is this very bench: no regression.
    assert code == 0 and "max_regression_pct       +0%" in out and PASSWORD not in out + err


@pytest.mark.slow
def test_eight_benches_at_once_into_a_new_postgresql_history_keep_every_bench_once(tmp_path, tiny_tflite,
                                                                                     postgres_history):
    benches = 8
    # All start against an empty database: they also race to create its tables.
    processes = [subprocess.Popen([sys.executable, "-m", "edgeprune", "bench", str(tiny_tflite), *BENCH_ARGS,
                                   "--label", f"bench-{index}", "-o", f"results-{index}.json",
                                   "--history", postgres_history],
                                  cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for index in range(benches)]
    outputs = [process.communicate(timeout=600) for process in processes]

    assert [process.returncode for process in processes] == [0] * benches, [err for _, err in outputs]
    history = History(parse_location(postgres_history, "--history"))
    try:
        listed = history.list_benches(None, 100)
        assert sorted(bench.label for bench in listed) == [f"bench-{index}" for index in range(benches)]
        for bench in listed:
            stored = history.load(bench.id)
            assert stored.runs == read_results(tmp_path / f"results-{bench.label.removeprefix('bench-')}.json").runs
    finally:
        history.close()


# --- failures: the results file is still written, one line, never the password ------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("problem", ["unreachable", "wrong password", "missing database"])
def test_a_history_that_fails_costs_the_history_only(isolated_cwd, capsys, tiny_tflite, postgres_server, problem):
    url = {
        "unreachable": f"postgresql://bench:{PASSWORD}@127.0.0.1:{free_port()}/history",
        "wrong password": postgres_server.url("postgres", password=PASSWORD + "-wrong"),
        "missing database": postgres_server.url("no_such_database"),
    }[problem]

    code, out, err = bench_into(capsys, url, tiny_tflite)

    assert code == 1 and "wrote results.json" in out
    assert read_results(Path("results.json")).runs[0].ok
    line = error_line(err)
    assert line.startswith("edgeprune: error: results history postgresql+psycopg://bench:***@127.0.0.1:")
    assert "record it later with edgeprune history record results.json" in line
    assert {"unreachable": "Connection refused", "wrong password": "password authentication failed",
            "missing database": 'database "no_such_database" does not exist'}[problem] in line
    assert PASSWORD not in out + err + Path("results.json").read_text()


@pytest.mark.slow
def test_a_results_file_recorded_later_becomes_a_bench(isolated_cwd, capsys, tiny_tflite, postgres_history):
    code, _, _ = cli(capsys, "bench", str(tiny_tflite), *BENCH_ARGS, "-o", "results.json", "--no-history")
    assert code == 0

    code, out, _ = cli(capsys, "history", "record", "results.json", "--label", "late", "--history", postgres_history)

    assert code == 0 and out.startswith("recorded results.json as bench 1 in postgresql+psycopg://bench:***@")
    code, out, _ = cli(capsys, "history", "list", "--label", "late", "--history", postgres_history)
    assert code == 0 and "late" in out and "1/1" in out


@pytest.mark.parametrize("how", ["PGPASSWORD", "pgpass"])
def test_a_url_without_password_finds_it_as_libpq_does(isolated_cwd, capsys, monkeypatch, postgres_server, how):
    database = postgres_server.new_database()
    if how == "PGPASSWORD":
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
    else:
        monkeypatch.delenv("PGPASSWORD", raising=False)
        pgpass = isolated_cwd / ".pgpass"
        pgpass.write_text(f"127.0.0.1:{postgres_server.port}:{database}:bench:{PASSWORD}\n", encoding="utf-8")
        pgpass.chmod(0o600)
        monkeypatch.setenv("PGPASSFILE", str(pgpass))

    code, out, err = cli(capsys, "history", "list", "--history", postgres_server.url(database, password=None))

    assert code == 0 and out.startswith("no benches in postgresql+psycopg://bench@127.0.0.1:"), err


def test_reading_a_history_that_is_not_there_creates_nothing(isolated_cwd, capsys):
    code, out, err = cli(capsys, "history", "show", "1")
    assert code == 2 and out == ""
    assert error_line(err) == ("edgeprune: error: no results history at '.edgeprune/history.sqlite' (pass --history "
                               "FOLDER|URL, or record one with edgeprune bench --label LABEL)")
    assert not Path(".edgeprune").exists()
    assert os.listdir(isolated_cwd) == []
