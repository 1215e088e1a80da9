-- Test clocks (billing issue, item 8): an operator previews a contract's life with sandbox
-- subscribers whose "now" is a clock the operator advances.

CREATE TABLE test_clocks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    now_us BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

ALTER TABLE accounts ADD COLUMN test_clock_id TEXT REFERENCES test_clocks (id);
