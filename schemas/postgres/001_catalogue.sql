-- hsc canonical catalogue, learning events and user policies.
-- Applied by `hsc schema apply` in a transaction; never edit an applied file,
-- add a new numbered one instead.

CREATE TABLE content (
    id            text PRIMARY KEY,
    version       bigint      NOT NULL CHECK (version >= 0),
    deleted       boolean     NOT NULL DEFAULT false,
    title         text,
    description   text,
    kind          text CHECK (kind IN ('movie', 'series', 'episode')),
    genres        text[]      NOT NULL DEFAULT '{}',
    themes        text[]      NOT NULL DEFAULT '{}',
    moods         text[]      NOT NULL DEFAULT '{}',
    related       text[]      NOT NULL DEFAULT '{}',
    language      text,
    year          integer,
    maturity      integer CHECK (maturity BETWEEN 0 AND 21),
    duration_s    bigint,
    embedding     bytea,   -- little-endian float32, kept so Milvus can be rebuilt
    embedding_dim integer,
    event_ts      bigint,  -- the producer's ts, epoch ms
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX content_genres_idx ON content USING gin (genres);

-- One row per interaction; the unique key makes a replayed event a no-op.
CREATE TABLE learning_events (
    id          bigserial PRIMARY KEY,
    user_id     text   NOT NULL,
    content_id  text   NOT NULL,
    kind        text   NOT NULL CHECK (kind IN ('view', 'like', 'dislike', 'skip', 'complete', 'rating')),
    value       double precision,
    ts          bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, content_id, kind, ts)
);
CREATE INDEX learning_events_user_idx ON learning_events (user_id, ts DESC);

-- Hard constraints and the version that cache keys include.
CREATE TABLE user_policies (
    user_id         text PRIMARY KEY,
    version         bigint  NOT NULL DEFAULT 1,
    excluded_genres text[]  NOT NULL DEFAULT '{}',
    max_maturity    integer CHECK (max_maturity BETWEEN 0 AND 21),
    languages       text[]  NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Learned preference weights per genre and theme.
CREATE TABLE user_preferences (
    user_id text NOT NULL,
    dim     text NOT NULL CHECK (dim IN ('genre', 'theme')),
    name    text NOT NULL,
    weight  double precision NOT NULL,
    PRIMARY KEY (user_id, dim, name)
);

-- How much one interaction moves a preference weight. Kept in SQL so the
-- rule is versioned with the schema and applied in the same statement that
-- appends the event.
CREATE FUNCTION hsc_learning_delta(kind text, value double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'like'     THEN 1.0
        WHEN 'dislike'  THEN -1.0
        WHEN 'complete' THEN 0.5 * coalesce(value, 1.0)
        WHEN 'view'     THEN 0.1
        WHEN 'skip'     THEN -0.2
        WHEN 'rating'   THEN (coalesce(value, 2.5) - 2.5) / 2.5
        ELSE 0.0
    END
$$;
