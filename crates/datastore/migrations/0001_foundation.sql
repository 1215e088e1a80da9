-- Foundation schema: accounts (subscribers and operators), credentials, terms acceptance,
-- audit log, outbox and inbox, jobs, idempotency. Written in the SQL both SQLite and PostgreSQL
-- speak: ids are TEXT (UUIDv7), instants are BIGINT microseconds since the epoch, money BIGINT cents.
-- Flags are BIGINT 0/1: the portable driver reads no SQLite BOOLEAN.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('subscriber', 'operator')),
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT CHECK (role IN ('admin', 'billing', 'support', 'abuse')),
    display_name TEXT NOT NULL,
    locale TEXT NOT NULL DEFAULT 'fr',
    email_verified_at BIGINT,
    totp_secret TEXT,
    totp_enabled BIGINT NOT NULL DEFAULT 0,
    totp_last_step BIGINT,
    credentials_changed_at BIGINT NOT NULL,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE subscriber_profiles (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    customer_kind TEXT NOT NULL CHECK (customer_kind IN ('consumer', 'professional')),
    full_name TEXT NOT NULL,
    company_name TEXT,
    company_id TEXT,
    vat_number TEXT,
    address_line1 TEXT NOT NULL,
    address_line2 TEXT,
    postal_code TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    phone TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE terms_versions (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    effective_at BIGINT NOT NULL
);

CREATE TABLE terms_acceptances (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    terms_version_id TEXT NOT NULL REFERENCES terms_versions (id),
    accepted_at BIGINT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX terms_acceptances_subscriber ON terms_acceptances (subscriber_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    token_hash TEXT NOT NULL UNIQUE,
    csrf_token TEXT NOT NULL,
    mfa_pending BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE one_time_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    ip TEXT NOT NULL,
    at BIGINT NOT NULL,
    success BIGINT NOT NULL
);
CREATE INDEX login_attempts_email ON login_attempts (email, at);
CREATE INDEX login_attempts_ip ON login_attempts (ip, at);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    subscriber_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_subscriber ON audit_log (subscriber_id, id);

CREATE TABLE emails (
    id TEXT PRIMARY KEY,
    account_id TEXT REFERENCES accounts (id),
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    transport TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    email_id TEXT REFERENCES emails (id),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX messages_subscriber ON messages (subscriber_id, id);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('ready', 'done', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    locked_by TEXT,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_due ON jobs (state, run_at);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
