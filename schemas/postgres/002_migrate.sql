-- Where each migration of a legacy catalogue stands (hsc-migrate). One row per
-- migrate.name; after_id is the last legacy id whose page was fully delivered
-- to Kafka, so a restart resumes after it and replays at most one page.
CREATE TABLE migrate_checkpoints (
    name        text PRIMARY KEY,
    source      text        NOT NULL,  -- label and server, so a changed mapping is noticed
    after_id    text        NOT NULL DEFAULT '',
    published   bigint      NOT NULL DEFAULT 0,
    problems    bigint      NOT NULL DEFAULT 0,
    total       bigint      NOT NULL DEFAULT 0,
    policies    bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
