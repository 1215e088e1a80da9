-- Billing: offers and the price list (R-3.6), subscriptions and offer changes (R-3.2), usage
-- records, invoices and credit notes with gapless numbers per series (R-6.1e), payments.
-- Calendar dates are TEXT 'YYYY-MM-DD' (Paris dates); contractual terms and the lines of an
-- issued document are stored as JSON, written once and never updated.

CREATE TABLE offers (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    terms TEXT NOT NULL,
    multiple_allowed BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    offer_id TEXT NOT NULL REFERENCES offers (id),
    terms TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'terminated')),
    start_date TEXT NOT NULL,
    commitment_end TEXT,
    billed_until TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX subscriptions_subscriber ON subscriptions (subscriber_id, id);
CREATE INDEX subscriptions_billing ON subscriptions (status, billed_until);

CREATE TABLE subscription_changes (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    from_offer_id TEXT NOT NULL REFERENCES offers (id),
    to_offer_id TEXT NOT NULL REFERENCES offers (id),
    from_terms TEXT NOT NULL,
    to_terms TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    invoice_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX subscription_changes_open ON subscription_changes (subscription_id, invoice_id);

CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    metric TEXT NOT NULL CHECK (metric IN ('storage_byte_hours', 'egress_bytes', 'public_ip_hours')),
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    day TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX usage_records_subscriber_day ON usage_records (subscriber_id, day);

CREATE TABLE document_sequences (
    series TEXT PRIMARY KEY,
    last_number BIGINT NOT NULL
);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    number TEXT NOT NULL UNIQUE,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    subscription_id TEXT REFERENCES subscriptions (id),
    billing_key TEXT UNIQUE,
    credited_invoice_id TEXT REFERENCES invoices (id),
    issue_date TEXT NOT NULL,
    due_date TEXT,
    seller TEXT NOT NULL,
    buyer TEXT NOT NULL,
    lines TEXT NOT NULL,
    vat TEXT NOT NULL,
    total_excl BIGINT NOT NULL,
    total_vat BIGINT NOT NULL,
    total_incl BIGINT NOT NULL,
    note TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX invoices_subscriber ON invoices (subscriber_id, id);

CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    method TEXT NOT NULL CHECK (method IN ('bank_transfer', 'manual', 'sepa_direct_debit')),
    reference TEXT NOT NULL,
    received_on TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX payments_subscriber ON payments (subscriber_id, id);

CREATE TABLE payment_allocations (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    amount BIGINT NOT NULL CHECK (amount > 0)
);
CREATE INDEX payment_allocations_invoice ON payment_allocations (invoice_id);

-- R-6.1c: a subscriber may ask for paper invoices; each new invoice then waits in the
-- operator's print-and-mail queue until marked mailed.
ALTER TABLE subscriber_profiles ADD COLUMN invoice_delivery TEXT NOT NULL DEFAULT 'electronic';

CREATE TABLE print_queue (
    invoice_id TEXT PRIMARY KEY REFERENCES invoices (id),
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    queued_at BIGINT NOT NULL,
    mailed_at BIGINT,
    mailed_by TEXT
);
