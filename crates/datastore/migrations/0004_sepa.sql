-- SEPA Core direct debit (billing issue, item 7): mandates, collections scheduled from invoices
-- with their pre-notification, exported batches (pain.008), and rejects that reverse a payment.

CREATE TABLE mandates (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    reference TEXT NOT NULL UNIQUE,
    iban TEXT NOT NULL,
    bic TEXT,
    holder TEXT NOT NULL,
    signed_on TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    acceptance TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX mandates_subscriber ON mandates (subscriber_id, id);

CREATE TABLE sepa_batches (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    transactions BIGINT NOT NULL,
    total BIGINT NOT NULL,
    xml TEXT NOT NULL
);

CREATE TABLE sepa_collections (
    id TEXT PRIMARY KEY,
    mandate_id TEXT NOT NULL REFERENCES mandates (id),
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    invoice_id TEXT NOT NULL UNIQUE REFERENCES invoices (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    collection_date TEXT NOT NULL,
    end_to_end_id TEXT NOT NULL UNIQUE,
    sequence TEXT NOT NULL CHECK (sequence IN ('FRST', 'RCUR')),
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'exported', 'rejected')),
    batch_id TEXT REFERENCES sepa_batches (id),
    payment_id TEXT REFERENCES payments (id),
    prenotified_at BIGINT NOT NULL,
    reject_reason TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX sepa_collections_due ON sepa_collections (status, collection_date);

ALTER TABLE payments ADD COLUMN reversed_at BIGINT;
ALTER TABLE payments ADD COLUMN reversal_reason TEXT;
