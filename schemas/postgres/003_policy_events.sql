-- User policies as events (hsc.policy.events, applied by hsc-ingest): blocked
-- titles, explicit preference weights, the last applied event version per
-- user, a short history, and the function that applies a batch of events in
-- one statement (so in one transaction) in their order.

-- blocked_ids: titles the user never sees. event_version: the version of the
-- last policy event applied (NULL: none yet); an event at or below it is ignored.
ALTER TABLE user_policies
    ADD COLUMN blocked_ids   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN event_version bigint;

-- Explicit preference weights, set by policy events. A title's policy score
-- sums, per genre and theme, the learned weight (user_preferences) and this one.
CREATE TABLE user_preference_overrides (
    user_id text NOT NULL,
    dim     text NOT NULL CHECK (dim IN ('genre', 'theme')),
    name    text NOT NULL,
    weight  double precision NOT NULL,
    PRIMARY KEY (user_id, dim, name)
);

-- The policy events applied to each user (the newest 100 are kept).
CREATE TABLE user_policy_history (
    user_id       text        NOT NULL,
    event_version bigint      NOT NULL,
    op            text        NOT NULL,
    change        jsonb       NOT NULL,
    event_ts      bigint,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, event_version)
);

-- The version a user's new user_policies row starts at: epoch milliseconds,
-- so a user erased and seen again never reuses a version that cache keys
-- (and hsc-query's in-process copy) may still hold for the erased policy.
CREATE FUNCTION hsc_policy_first_version() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

-- Applies policy events (a jsonb array, oldest first; each element as built
-- by hsc-ingest: user_id, version, op, ts and the fields of the change) in
-- order. Returns one row per user touched: the policy version now stored
-- (NULL when the user has no row any more) and whether the user was erased
-- in this batch (so the caller also deletes the user's cached results).
CREATE FUNCTION hsc_apply_policy_events(events jsonb)
RETURNS TABLE (r_user text, r_version bigint, r_erased boolean, r_applied integer)
LANGUAGE plpgsql AS $$
DECLARE
    e       jsonb;
    uid     text;
    ver     bigint;
    op      text;
    cur     bigint;
    has_row boolean;
    touched text[] := '{}';
    erased  text[] := '{}';
    applied text[] := '{}';
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(events) WITH ORDINALITY AS x(value, n) ORDER BY n
    LOOP
        uid := e->>'user_id';
        ver := (e->>'version')::bigint;
        op  := e->>'op';
        IF NOT uid = ANY(touched) THEN
            touched := touched || uid;
        END IF;
        SELECT p.event_version INTO cur FROM user_policies p WHERE p.user_id = uid FOR UPDATE;
        has_row := FOUND;
        IF has_row AND cur IS NOT NULL AND ver <= cur THEN
            CONTINUE; -- older or repeated: ignored
        END IF;
        applied := applied || uid;
        IF op = 'erase' THEN
            DELETE FROM user_policies WHERE user_id = uid;
            DELETE FROM user_preferences WHERE user_id = uid;
            DELETE FROM user_preference_overrides WHERE user_id = uid;
            DELETE FROM learning_events WHERE user_id = uid;
            DELETE FROM user_policy_history WHERE user_id = uid;
            erased := erased || uid;
            CONTINUE;
        END IF;
        INSERT INTO user_policies AS p (user_id, version, event_version)
        VALUES (uid, hsc_policy_first_version(), ver)
        ON CONFLICT (user_id) DO UPDATE
            SET version = p.version + 1, event_version = ver, updated_at = now();
        IF op = 'set' THEN
            IF e->'clear' ? 'excluded_genres' THEN
                UPDATE user_policies SET excluded_genres = '{}' WHERE user_id = uid;
            END IF;
            IF e->'clear' ? 'max_maturity' THEN
                UPDATE user_policies SET max_maturity = NULL WHERE user_id = uid;
            END IF;
            IF e->'clear' ? 'languages' THEN
                UPDATE user_policies SET languages = '{}' WHERE user_id = uid;
            END IF;
            IF e->'clear' ? 'blocked_ids' THEN
                UPDATE user_policies SET blocked_ids = '{}' WHERE user_id = uid;
            END IF;
            IF e->'clear' ? 'prefs' THEN
                DELETE FROM user_preference_overrides WHERE user_id = uid;
            END IF;
            IF e ? 'excluded_genres' THEN
                UPDATE user_policies SET excluded_genres = ARRAY(
                    SELECT g FROM (
                        SELECT regexp_replace(lower(btrim(g0)), '\s+', ' ', 'g') AS g, min(n) AS n
                        FROM jsonb_array_elements_text(e->'excluded_genres')
                            WITH ORDINALITY AS x(g0, n)
                        GROUP BY 1) d
                    WHERE g <> '' ORDER BY n)
                WHERE user_id = uid;
            END IF;
            IF e ? 'max_maturity' THEN
                UPDATE user_policies SET max_maturity = (e->>'max_maturity')::integer
                WHERE user_id = uid;
            END IF;
            IF e ? 'languages' THEN
                UPDATE user_policies SET languages = ARRAY(
                    SELECT DISTINCT lower(l) FROM jsonb_array_elements_text(e->'languages') l)
                WHERE user_id = uid;
            END IF;
            IF e ? 'blocked_ids' THEN
                UPDATE user_policies SET blocked_ids = ARRAY(
                    SELECT id FROM (
                        SELECT id, min(n) AS n
                        FROM jsonb_array_elements_text(e->'blocked_ids') WITH ORDINALITY AS x(id, n)
                        GROUP BY 1) d
                    ORDER BY n)
                WHERE user_id = uid;
            END IF;
            IF e ? 'prefs' THEN
                DELETE FROM user_preference_overrides o
                USING jsonb_array_elements(e->'prefs') x
                WHERE o.user_id = uid AND o.dim = x->>'dim' AND o.name = lower(btrim(x->>'name'));
                INSERT INTO user_preference_overrides (user_id, dim, name, weight)
                SELECT DISTINCT ON (x->>'dim', lower(btrim(x->>'name')))
                       uid, x->>'dim', lower(btrim(x->>'name')), (x->>'weight')::double precision
                FROM jsonb_array_elements(e->'prefs') WITH ORDINALITY AS a(x, n)
                WHERE (x->>'weight')::double precision <> 0
                ORDER BY x->>'dim', lower(btrim(x->>'name')), n DESC;
            END IF;
        ELSIF op = 'block' THEN
            -- appended, oldest first; beyond 1000 the oldest are dropped
            UPDATE user_policies p SET blocked_ids = ARRAY(
                SELECT id FROM (
                    SELECT id, max(n) AS n FROM (
                        SELECT id, n FROM unnest(p.blocked_ids) WITH ORDINALITY AS b(id, n)
                        UNION ALL
                        SELECT id, 1000000 + n FROM jsonb_array_elements_text(e->'ids')
                            WITH ORDINALITY AS x(id, n)) a
                    GROUP BY id ORDER BY 2 DESC LIMIT 1000) k
                ORDER BY n)
            WHERE p.user_id = uid;
        ELSIF op = 'unblock' THEN
            UPDATE user_policies p SET blocked_ids = ARRAY(
                SELECT id FROM unnest(p.blocked_ids) WITH ORDINALITY AS b(id, n)
                WHERE NOT id IN (SELECT jsonb_array_elements_text(e->'ids')) ORDER BY n)
            WHERE p.user_id = uid;
        END IF;
        INSERT INTO user_policy_history (user_id, event_version, op, change, event_ts)
        VALUES (uid, ver, op, e - 'user_id' - 'version' - 'op' - 'ts', (e->>'ts')::bigint)
        ON CONFLICT DO NOTHING;
        DELETE FROM user_policy_history h
        WHERE h.user_id = uid AND h.event_version <= (
            SELECT event_version FROM user_policy_history
            WHERE user_id = uid ORDER BY event_version DESC OFFSET 100 LIMIT 1);
    END LOOP;
    RETURN QUERY
        SELECT t.u, p.version, t.u = ANY(erased), cardinality(array_positions(applied, t.u))
        FROM unnest(touched) AS t(u) LEFT JOIN user_policies p ON p.user_id = t.u;
END
$$;
