-- The support desk (issue 7): tickets with their thread, attachments, response targets and
-- escalations (R-1d), abuse reports from anyone (R-4a), credential-loss reports (R-5a),
-- registered letters recorded by operators (R-7.2a), canned replies.

-- Emails may name where a reply goes (a ticket's reply address).
ALTER TABLE emails ADD COLUMN reply_to TEXT;

CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    -- What people quote: #1042. Gapless per platform (document_sequences 'ticket').
    number BIGINT NOT NULL UNIQUE,
    -- request: opened by a subscriber (or an operator for one); credential_loss: R-5a report;
    -- abuse_report: R-4a, from anyone, never shown to the subscriber it is about;
    -- letter: a registered letter an operator recorded (R-7.2a).
    kind TEXT NOT NULL CHECK (kind IN ('request', 'credential_loss', 'abuse_report', 'letter')),
    -- The subscriber the ticket is about (NULL: an abuse report naming no known resource).
    subscriber_id TEXT REFERENCES accounts (id),
    -- Who is answered by email when it is not the subscriber (an abuse reporter).
    contact_email TEXT,
    contact_name TEXT,
    subject TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('technical', 'billing', 'account', 'abuse')),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status TEXT NOT NULL CHECK (status IN ('new', 'open', 'waiting', 'resolved', 'closed')),
    assignee_id TEXT REFERENCES accounts (id),
    -- Linked resources, JSON [{"kind":"vm","id":"…","label":"…"}], checked as the subscriber's.
    resources TEXT NOT NULL DEFAULT '[]',
    -- The secret part of the ticket's reply address (support+<token>@…): unguessable.
    reply_token TEXT NOT NULL UNIQUE,
    -- console, api, cli, email, form, letter
    source TEXT NOT NULL,
    merged_into TEXT REFERENCES tickets (id),
    -- kind-specific state (credential_loss: pending/confirmed/rejected; letter: received_on…)
    detail TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    first_response_due_at BIGINT NOT NULL,
    resolution_due_at BIGINT NOT NULL,
    first_response_at BIGINT,
    resolved_at BIGINT,
    closed_at BIGINT,
    -- Escalation stage reached for each target: 0 none, 1 on-call warned, 2 admins (breached).
    first_response_stage BIGINT NOT NULL DEFAULT 0,
    resolution_stage BIGINT NOT NULL DEFAULT 0,
    first_response_breached BIGINT NOT NULL DEFAULT 0,
    resolution_breached BIGINT NOT NULL DEFAULT 0,
    rating BIGINT CHECK (rating BETWEEN 1 AND 5),
    rating_comment TEXT
);
CREATE INDEX tickets_subscriber ON tickets (subscriber_id, id);
CREATE INDEX tickets_queue ON tickets (status, priority, id);
CREATE INDEX tickets_due ON tickets (status, first_response_due_at);

CREATE TABLE ticket_messages (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    -- subscriber, operator, contact (an abuse reporter), system
    author_kind TEXT NOT NULL CHECK (author_kind IN ('subscriber', 'operator', 'contact', 'system')),
    author_id TEXT REFERENCES accounts (id),
    author_label TEXT NOT NULL,
    body TEXT NOT NULL,
    -- An operators' note: never shown to the subscriber or the contact.
    internal BIGINT NOT NULL DEFAULT 0,
    -- web or email
    via TEXT NOT NULL,
    -- The Message-ID of the email it came from: a message read twice (a crash between the
    -- commit and the move to cur/) is recognised and not posted again.
    external_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, id);
CREATE INDEX ticket_messages_external ON ticket_messages (ticket_id, external_id);

CREATE TABLE ticket_attachments (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    message_id TEXT NOT NULL REFERENCES ticket_messages (id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- The file sealed with the platform's data key (XChaCha20-Poly1305), base64 (R-9.4).
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_attachments_message ON ticket_attachments (message_id);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (ticket_id);

-- What happened to a ticket besides messages: escalations, breaches, assignments, merges.
CREATE TABLE ticket_events (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

-- R-1d: response targets per priority, in minutes, around the clock.
CREATE TABLE support_targets (
    priority TEXT PRIMARY KEY CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    first_response_minutes BIGINT NOT NULL CHECK (first_response_minutes > 0),
    resolution_minutes BIGINT NOT NULL CHECK (resolution_minutes > 0),
    updated_at BIGINT NOT NULL
);
INSERT INTO support_targets (priority, first_response_minutes, resolution_minutes, updated_at) VALUES
    ('urgent', 30, 240, 0),
    ('high', 60, 480, 0),
    ('normal', 240, 1440, 0),
    ('low', 480, 4320, 0);

CREATE TABLE canned_replies (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Public forms (abuse reports, credential-loss reports): attempts per source address, for the
-- rate limit.
CREATE TABLE support_form_hits (
    id TEXT PRIMARY KEY,
    form TEXT NOT NULL,
    ip TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX support_form_hits_ip ON support_form_hits (form, ip, at);
