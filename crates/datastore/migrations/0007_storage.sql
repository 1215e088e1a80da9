-- Object storage (R-1b): subscribers' S3 access keys, buckets, the object index (the bytes live
-- in the blob store as extents; a row names them), multipart uploads and their parts, extents
-- awaiting deletion, operator-set quotas, and per-day request and traffic counters (R-6.1b).

CREATE TABLE storage_keys (
    -- the access key id, as clients send it (e.g. MCK...)
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    -- the secret access key, sealed (XChaCha20-Poly1305): SigV4 needs it in clear to verify.
    secret TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX storage_keys_subscriber ON storage_keys (subscriber_id);

CREATE TABLE buckets (
    -- one namespace for the whole platform, as in S3
    name TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    -- JSON CORS rules, or NULL
    cors TEXT,
    -- live totals, kept in the transaction that changes an object
    bytes BIGINT NOT NULL,
    objects BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX buckets_subscriber ON buckets (subscriber_id);

CREATE TABLE objects (
    bucket TEXT NOT NULL REFERENCES buckets (name),
    key TEXT NOT NULL,
    -- changes at every overwrite
    version TEXT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT,
    -- JSON: user metadata, standard headers, checksums, part sizes
    metadata TEXT NOT NULL,
    -- JSON array of the blob store's extent descriptors, in order
    extents TEXT NOT NULL,
    modified_at BIGINT NOT NULL,
    PRIMARY KEY (bucket, key)
);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL REFERENCES buckets (name),
    key TEXT NOT NULL,
    content_type TEXT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX uploads_bucket ON uploads (bucket, key);

CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    part_number BIGINT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    -- JSON: checksums sent with the part
    checksums TEXT NOT NULL,
    extent TEXT NOT NULL,
    modified_at BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- Extents no row names any more (an overwrite, a delete, a replaced part): their shards are
-- removed after the transaction that let go of them commits.
CREATE TABLE storage_garbage (
    id TEXT PRIMARY KEY,
    extent TEXT NOT NULL,
    queued_at BIGINT NOT NULL
);

CREATE TABLE storage_quotas (
    subscriber_id TEXT PRIMARY KEY REFERENCES accounts (id),
    bytes BIGINT NOT NULL,
    objects BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE storage_counters (
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    day TEXT NOT NULL,
    requests BIGINT NOT NULL,
    ingress_bytes BIGINT NOT NULL,
    egress_bytes BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, day)
);

-- Every extent a row names (object or part), inserted in the same transaction: the blob store's
-- extents that are not here are orphans of a crash between writing bytes and committing.
CREATE TABLE storage_extents (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
