-- Contract lifecycle (issue 5): dunning reminders (R-7.1b), suspensions (R-7.1a–d), proof
-- requests and their encrypted documents (R-3.3, R-7.3b), terminations (R-7.2, R-7.3), terms
-- versions with their class and the notices sent (R-6.3, R-3.4, R-3.5), incidents and the
-- compensation granted for them (R-8.1, R-8.2).

-- R-7.1b: one reminder per unpaid invoice, sent the day after its due date.
CREATE TABLE dunning_reminders (
    invoice_id TEXT PRIMARY KEY REFERENCES invoices (id),
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    reminded_on TEXT NOT NULL,
    reminded_at BIGINT NOT NULL
);
CREATE INDEX dunning_reminders_subscriber ON dunning_reminders (subscriber_id);

CREATE TABLE suspensions (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    cause TEXT NOT NULL CHECK (cause IN ('non_payment', 'incomplete_file', 'breach', 'network', 'authority')),
    reason TEXT NOT NULL,
    -- 'pending': due, waiting for an operator to confirm (operator-confirmed dunning mode).
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'lifted')),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    lifted_at BIGINT,
    lifted_by TEXT,
    lift_reason TEXT
);
CREATE INDEX suspensions_subscriber ON suspensions (subscriber_id, status);
-- One open suspension per cause: replicas sweeping at once cannot suspend twice.
CREATE UNIQUE INDEX suspensions_open ON suspensions (subscriber_id, cause) WHERE status <> 'lifted';

CREATE TABLE proof_requests (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL CHECK (kind IN ('identity', 'address', 'termination_reason')),
    note TEXT NOT NULL,
    -- open: waiting for a document; submitted: waiting for review; rejected: a new document is needed.
    status TEXT NOT NULL CHECK (status IN ('open', 'submitted', 'approved', 'rejected')),
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    requested_on TEXT NOT NULL,
    file_name TEXT,
    content_type TEXT,
    size BIGINT,
    -- The document, sealed with the platform's data key (XChaCha20-Poly1305), base64.
    sealed TEXT,
    submitted_at BIGINT,
    decided_at BIGINT,
    decided_by TEXT,
    decision_reason TEXT
);
CREATE INDEX proof_requests_subscriber ON proof_requests (subscriber_id, id);

CREATE TABLE terminations (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    channel TEXT NOT NULL CHECK (channel IN ('online', 'letter')),
    received_on TEXT NOT NULL,
    end_choice TEXT NOT NULL CHECK (end_choice IN ('month_end', 'date')),
    end_date TEXT NOT NULL,
    -- R-7.3b legitimate reason claimed, and the proof request that carries its proof.
    reason TEXT,
    proof_request_id TEXT REFERENCES proof_requests (id),
    -- R-6.3 / R-3.5: the terms version whose window makes it penalty-free.
    penalty_free_terms TEXT,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'withdrawn', 'ended')),
    final_invoice_id TEXT REFERENCES invoices (id),
    -- When the final invoice was issued, or found to have nothing to charge.
    settled_at BIGINT,
    recorded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    withdrawn_at BIGINT,
    ended_at BIGINT,
    erase_on TEXT,
    erased_at BIGINT
);
CREATE INDEX terminations_subscription ON terminations (subscription_id, status);
CREATE INDEX terminations_due ON terminations (status, end_date);

-- R-6.3 / R-3.5: how a new terms version is classed when published.
ALTER TABLE terms_versions ADD COLUMN class TEXT NOT NULL DEFAULT 'initial';
ALTER TABLE terms_versions ADD COLUMN substantial BIGINT NOT NULL DEFAULT 0;
ALTER TABLE terms_versions ADD COLUMN closure BIGINT NOT NULL DEFAULT 0;
ALTER TABLE terms_versions ADD COLUMN equivalent_migration BIGINT NOT NULL DEFAULT 0;
ALTER TABLE terms_versions ADD COLUMN summary TEXT NOT NULL DEFAULT '';
ALTER TABLE terms_versions ADD COLUMN published_by TEXT NOT NULL DEFAULT 'system';

CREATE TABLE terms_notices (
    terms_version_id TEXT NOT NULL REFERENCES terms_versions (id),
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    notified_at BIGINT NOT NULL,
    -- The last day (Paris) a termination carries no commitment dues, when the version opens one.
    window_end TEXT,
    PRIMARY KEY (terms_version_id, subscriber_id)
);
CREATE INDEX terms_notices_subscriber ON terms_notices (subscriber_id);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    resources TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    force_majeure BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE compensations (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    credit_note_id TEXT NOT NULL REFERENCES invoices (id),
    amount BIGINT NOT NULL,
    granted_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX compensations_incident ON compensations (incident_id, subscriber_id);
