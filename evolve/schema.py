"""The archive's SQLite schema (documented in docs/archive.md) and the migrations from older versions.

Only :mod:`evolve.store` executes these; they live apart because they change on a different clock
(a schema version) than the store's operations and queries.
"""

SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    config_json TEXT NOT NULL,
    seed INTEGER NOT NULL,
    problem_name TEXT NOT NULL,
    problem_version TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    rng_state_json TEXT,
    state TEXT NOT NULL,         -- running | finished | interrupted | failed
    stop_reason TEXT,            -- why a run ended failed (or which budget ended it)
    problem_json TEXT,           -- the problem's declaration: descriptors, stages (readers need no problem code)
    isolation_json TEXT          -- the isolation candidates ran under (set at each start; NULL before schema 3)
);
CREATE TABLE programs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL,
    parent_ids TEXT NOT NULL,    -- JSON list of program ids
    parent_id INTEGER,           -- the first parent (NULL for seeds): lineage and children queries
    operator TEXT NOT NULL,
    island INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    failure_kind TEXT,
    rejection TEXT,              -- invalid | duplicate_code | duplicate_behaviour | operator
    duplicate_of INTEGER REFERENCES programs(id),
    stage_reached TEXT,
    metrics TEXT NOT NULL,       -- JSON object, per stage name
    fitness REAL,                -- search fitness
    validated_fitness REAL,
    heldout_fitness REAL,
    descriptors TEXT NOT NULL,   -- JSON object
    code_hash TEXT NOT NULL,
    fingerprint TEXT,
    output TEXT NOT NULL,
    created_at REAL NOT NULL,
    eval_started_at REAL,
    eval_finished_at REAL,
    eval_seconds REAL,
    llm_model TEXT,
    llm_prompt TEXT,
    llm_response TEXT,
    llm_tokens_in INTEGER,
    llm_tokens_out INTEGER,
    llm_cost REAL,
    llm_latency_s REAL,
    operator_info TEXT NOT NULL  -- JSON object
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,          -- elite_added | elite_replaced | migration | island_reset
    island INTEGER NOT NULL,
    program_id INTEGER REFERENCES programs(id),
    data TEXT NOT NULL,          -- JSON object
    created_at REAL NOT NULL
);
CREATE TABLE llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id INTEGER REFERENCES programs(id),  -- the child it wrote (NULL for insights)
    purpose TEXT NOT NULL,       -- llm_diff | llm_rewrite | llm_crossover | llm_repair | insights
    model TEXT NOT NULL,
    attempt INTEGER NOT NULL,    -- 0 for the first try, then one row per retry
    prompt TEXT NOT NULL,        -- JSON list of chat messages
    response TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost REAL,                   -- USD; NULL where the price is unknown
    latency_s REAL NOT NULL,
    error TEXT,                  -- NULL when the attempt got a reply
    started_at REAL NOT NULL
);
CREATE TABLE insights (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    evaluations INTEGER NOT NULL, -- completed evaluations when it was written
    model TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE islands (
    island INTEGER PRIMARY KEY,
    evaluations INTEGER NOT NULL,
    since_improvement INTEGER NOT NULL,
    best_fitness REAL,
    best_program_id INTEGER
);
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS programs_hash ON programs(code_hash);
CREATE INDEX IF NOT EXISTS programs_fingerprint ON programs(fingerprint);
CREATE INDEX IF NOT EXISTS programs_status ON programs(status, operator, failure_kind, rejection);
CREATE INDEX IF NOT EXISTS programs_operator ON programs(operator);
CREATE INDEX IF NOT EXISTS programs_fitness ON programs(fitness);
CREATE INDEX IF NOT EXISTS programs_validated ON programs(validated_fitness);
CREATE INDEX IF NOT EXISTS programs_parent ON programs(parent_id);
CREATE INDEX IF NOT EXISTS programs_duplicate ON programs(duplicate_of);
CREATE INDEX IF NOT EXISTS programs_finished ON programs(eval_finished_at);
CREATE INDEX IF NOT EXISTS llm_calls_program ON llm_calls(program_id);
CREATE INDEX IF NOT EXISTS llm_calls_spend ON llm_calls(model, error, tokens_in, tokens_out, cost, latency_s);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind);
"""
# v1 -> v2: columns added (all nullable), derivable ones filled from what v1 stored.
MIGRATE_V1 = """
ALTER TABLE run ADD COLUMN stop_reason TEXT;
ALTER TABLE run ADD COLUMN problem_json TEXT;
ALTER TABLE programs ADD COLUMN parent_id INTEGER;
ALTER TABLE programs ADD COLUMN rejection TEXT;
ALTER TABLE programs ADD COLUMN validated_fitness REAL;
ALTER TABLE programs ADD COLUMN heldout_fitness REAL;
ALTER TABLE programs ADD COLUMN fingerprint TEXT;
UPDATE programs SET parent_id = json_extract(parent_ids, '$[0]');
UPDATE programs SET rejection = CASE WHEN duplicate_of IS NOT NULL THEN 'duplicate_code'
    WHEN failure_kind IN ('syntax', 'static_rule') THEN 'invalid' ELSE 'operator' END WHERE status = 'rejected';
UPDATE programs SET heldout_fitness = json_extract(metrics, '$.heldout.fitness');
UPDATE run SET schema_version = 2;
"""
# v2 -> v3: the isolation in force, stored with the run (unknown for runs made before).
MIGRATE_V2 = """
ALTER TABLE run ADD COLUMN isolation_json TEXT;
UPDATE run SET schema_version = 3;
"""
MIGRATIONS = {1: MIGRATE_V1, 2: MIGRATE_V2}  # from each version to the next
