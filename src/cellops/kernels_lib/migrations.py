"""Numbered, idempotent schema migrations for the workspace database (simonw/llm style).

Each entry is (number, description, SQL). A migration runs once, inside a transaction, and its
number is recorded in ``_migrations``. Never edit a released migration: add a new one.
Number ranges by area keep parallel work from colliding:
1-9 core · 10-19 guard · 20-29 rag · 30-39 train · 40-49 pipelines (41-44: sec, schedules as
rows) · 50-59 prompt loop · 60-64 traces ·
90-99 serving and monitoring · 120-124 run records (r17).
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
    (
        41,
        "pipelines: schedules as plain rows; APScheduler's pickled jobs set aside, never loaded",
        # APScheduler's table is created empty when absent so one script fits every database.
        # Its rows are moved aside as they are: cellops reads only the plain columns (job_state
        # is a pickle, and loading one runs code); the bytes stay for a user to recover by hand.
        """
        CREATE TABLE IF NOT EXISTS schedules (
            name TEXT PRIMARY KEY, spec TEXT NOT NULL, next_run REAL, rev INTEGER NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS schedules_unmoved (
            name TEXT PRIMARY KEY, next_run REAL, job_state BLOB
        );
        CREATE TABLE IF NOT EXISTS apscheduler_jobs (
            id VARCHAR(191) NOT NULL PRIMARY KEY, next_run_time FLOAT, job_state BLOB NOT NULL
        );
        INSERT OR IGNORE INTO schedules_unmoved (name, next_run, job_state)
            SELECT id, next_run_time, job_state FROM apscheduler_jobs;
        DROP TABLE apscheduler_jobs
        """,
    ),
    (
        50,
        "prompt loop: response cache (model URI + weights hash + messages + params -> response)",
        """
        CREATE TABLE IF NOT EXISTS prompt_cache (
            key TEXT PRIMARY KEY, model TEXT NOT NULL, weights_hash TEXT NOT NULL,
            response TEXT NOT NULL, created_at REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS prompt_cache_by_model ON prompt_cache(model)
        """,
    ),
    (
        51,
        "prompt loop: feedback (up/down + comment) on run outputs and grid cells",
        """
        CREATE TABLE IF NOT EXISTS prompt_feedback (
            run_id TEXT NOT NULL, cell TEXT NOT NULL DEFAULT '', prompt TEXT NOT NULL,
            prompt_name TEXT NOT NULL, model TEXT NOT NULL, rating INTEGER NOT NULL,
            comment TEXT NOT NULL DEFAULT '', messages TEXT NOT NULL, output TEXT NOT NULL,
            created_at REAL NOT NULL, PRIMARY KEY (run_id, cell)
        );
        CREATE INDEX IF NOT EXISTS prompt_feedback_by_name ON prompt_feedback(prompt_name, created_at)
        """,
    ),
    (
        60,
        "traces: spans (indexed by trace and time) + one summary row per trace (root name, status)",
        """
        CREATE TABLE IF NOT EXISTS spans (
            trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
            kind TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL,
            attributes TEXT NOT NULL, events TEXT NOT NULL, PRIMARY KEY (trace_id, span_id)
        );
        CREATE INDEX IF NOT EXISTS spans_by_time ON spans(started_at);
        CREATE TABLE IF NOT EXISTS traces (
            trace_id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
            started_at REAL NOT NULL, ended_at REAL, spans INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL, run_id TEXT
        );
        CREATE INDEX IF NOT EXISTS traces_by_time ON traces(started_at);
        CREATE INDEX IF NOT EXISTS traces_by_name ON traces(name, started_at);
        CREATE INDEX IF NOT EXISTS traces_by_status ON traces(status, started_at)
        """,
    ),
    (
        90,
        "serving: one row per served request (app, variant, client, status, tokens, latency, run)",
        """
        CREATE TABLE IF NOT EXISTS serve_requests (
            id TEXT PRIMARY KEY, app TEXT NOT NULL, variant TEXT NOT NULL, target TEXT NOT NULL,
            client TEXT, status TEXT NOT NULL, created_at REAL NOT NULL, latency_s REAL NOT NULL,
            ttft_s REAL, prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0, run_id TEXT, trace_id TEXT, model TEXT,
            input TEXT NOT NULL DEFAULT '', output TEXT NOT NULL DEFAULT '', stream INTEGER NOT NULL,
            pid INTEGER, record TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS serve_requests_by_app ON serve_requests(app, created_at);
        CREATE INDEX IF NOT EXISTS serve_requests_by_run ON serve_requests(run_id)
        """,
    ),
    (
        91,
        "serving: feedback keeps a 1-5 score and a corrected answer next to up/down",
        """
        ALTER TABLE prompt_feedback ADD COLUMN score INTEGER;
        ALTER TABLE prompt_feedback ADD COLUMN correction TEXT NOT NULL DEFAULT ''
        """,
    ),
    (
        120,
        "run records: the versions a pipeline run created, kept or resolved, tagged with its id",
        """
        CREATE TABLE IF NOT EXISTS run_versions (
            run_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
            hash TEXT NOT NULL, action TEXT NOT NULL, at REAL NOT NULL,
            PRIMARY KEY (run_id, kind, name, version, action)
        )
        """,
    ),
]
