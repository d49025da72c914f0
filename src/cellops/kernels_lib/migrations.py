"""Numbered, idempotent schema migrations for the workspace database (simonw/llm style).

Each entry is (number, description, SQL). A migration runs once, inside a transaction, and its
number is recorded in ``_migrations``. Never edit a released migration: add a new one.
Number ranges by area keep parallel work from colliding:
1-9 core · 10-19 guard · 20-29 rag · 30-39 train · 40-49 pipelines · 50-59 prompt loop.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "versions, aliases, runs, state",
        """
        CREATE TABLE IF NOT EXISTS versions (
            kind TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
            hash TEXT NOT NULL, content TEXT NOT NULL, created_at REAL NOT NULL,
            PRIMARY KEY (kind, name, version)
        );
        CREATE INDEX IF NOT EXISTS versions_hash ON versions(kind, name, hash);
        CREATE TABLE IF NOT EXISTS aliases (
            kind TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
            PRIMARY KEY (kind, name, alias)
        );
        CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, version INTEGER,
            status TEXT NOT NULL, created_at REAL NOT NULL, record TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS runs_by_name ON runs(kind, name, created_at);
        CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    (
        40,
        "pipelines: schedule events (fired, skipped, missed, retried, hook)",
        """
        CREATE TABLE IF NOT EXISTS schedule_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, schedule TEXT NOT NULL, event TEXT NOT NULL,
            at REAL NOT NULL, scheduled_for REAL, run_id TEXT, attempt INTEGER, detail TEXT
        );
        CREATE INDEX IF NOT EXISTS schedule_events_by_name ON schedule_events(schedule, at)
        """,
    ),
]
