-- Personal data (issue 9): marketing consent per purpose with its history (R-9.2), the
-- subscriber's restriction and objection (R-9.5), the register of processors and recipients
-- (R-9.1), and access exports (R-9.5).

-- The subscriber an email is about (a desk email quoting their ticket, say), so that erasure
-- finds every email holding their data, not only those sent to them.
ALTER TABLE emails ADD COLUMN about_subscriber TEXT;
CREATE INDEX emails_about ON emails (about_subscriber);
-- A marketing email's one-click opt-out address (List-Unsubscribe, RFC 8058).
ALTER TABLE emails ADD COLUMN list_unsubscribe TEXT;

-- The current state, one row per (subscriber, purpose); absent = never given = no.
CREATE TABLE consents (
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('loyalty', 'prospecting', 'surveys', 'promotions')),
    granted BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, purpose)
);
-- Every change, never updated: time, source (console, api, cli, unsubscribe link) and address.
CREATE TABLE consent_events (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    purpose TEXT NOT NULL,
    granted BIGINT NOT NULL,
    source TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX consent_events_subscriber ON consent_events (subscriber_id, id);

-- Restriction (processing frozen beyond the contract and the law) and objection (no processing
-- on legitimate interest: no statistics, no profiling): the current state and its history.
CREATE TABLE privacy_state (
    subscriber_id TEXT PRIMARY KEY REFERENCES accounts (id),
    restricted BIGINT NOT NULL DEFAULT 0,
    objected BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);
CREATE TABLE privacy_events (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    choice TEXT NOT NULL CHECK (choice IN ('restriction', 'objection')),
    active BIGINT NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX privacy_events_subscriber ON privacy_events (subscriber_id, id);

-- R-9.1: who receives or processes personal data, shown to subscribers.
CREATE TABLE processors (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('processor', 'recipient')),
    name TEXT NOT NULL,
    purpose TEXT NOT NULL,
    data_categories TEXT NOT NULL,
    country TEXT NOT NULL,
    safeguards TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    removed_at BIGINT
);

-- R-9.5: an archive of everything about a subscriber, built by a job, sealed at rest.
CREATE TABLE privacy_exports (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    status TEXT NOT NULL CHECK (status IN ('queued', 'ready', 'failed', 'expired')),
    requested_at BIGINT NOT NULL,
    ready_at BIGINT,
    expires_at BIGINT,
    size BIGINT,
    error TEXT
);
CREATE INDEX privacy_exports_subscriber ON privacy_exports (subscriber_id, id);

-- R-9.5 erasure, confirmed twice: a code emailed to the subscriber, then typed back with their
-- email address. One pending request per subscriber.
CREATE TABLE erasure_requests (
    subscriber_id TEXT PRIMARY KEY REFERENCES accounts (id),
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
