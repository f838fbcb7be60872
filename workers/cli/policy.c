/*
 * hsc policy set|show|erase: a user's policy from the command line. set and
 * erase publish PolicyEvents to hsc.policy.events (keyed by user id, so one
 * user's events stay in order), which hsc-ingest applies; show reads what
 * PostgreSQL holds: constraints, preferences (learned, decayed as hsc-query
 * uses them when a half-life is configured; explicit; combined),
 * the versions and the recent history. --json prints one object.
 */
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "hsc/codec.h"
#include "kafka.h"
#include "util.h"

const char CLI_POLICY_USAGE[] =
    "Usage: hsc policy set USER [options] [--json]\n"
    "       hsc policy show USER [--history N] [--json]\n"
    "       hsc policy erase USER --yes [--version N] [--json]\n"
    "set publishes the changes as policy events (hsc-ingest applies them; the next\n"
    "search sees them). Its options:\n"
    "  --exclude-genres G,G   excluded genres (replaces the list)\n"
    "  --max-maturity N       maturity ceiling, minimum age 0-21\n"
    "  --languages L,L        allowed languages, ISO 639-1 (empty: any)\n"
    "  --blocked ID,ID        blocked titles (replaces the list)\n"
    "  --block ID,ID          add blocked titles\n"
    "  --unblock ID,ID        remove blocked titles\n"
    "  --pref DIM:NAME=W      explicit weight of a genre or theme (-100..100; 0 removes it),\n"
    "                         added to the learned weight; repeatable\n"
    "  --clear FIELD          excluded_genres, max_maturity, languages, blocked_ids or prefs;\n"
    "                         repeatable\n"
    "  --version N            the first event's version (default: now in microseconds;\n"
    "                         each further event of the call takes the next one)\n"
    "erase publishes an erase event: the user's policy, preferences, learning events and\n"
    "cached results are deleted. show reads PostgreSQL.\n";

/* ---- publishing ---- */

struct delivery {
    int done, failed;
    char error[256];
    int32_t partition;
    int64_t offset;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct delivery *d = rkm->_private;
    d->done = 1;
    if (rkm->err) {
        d->failed = 1;
        snprintf(d->error, sizeof(d->error), "%s", rd_kafka_err2str(rkm->err));
    } else {
        d->partition = rkm->partition;
        d->offset = rkm->offset;
    }
    (void)rk;
    (void)opaque;
}

/* Encodes and produces each event, waiting for every delivery; prints what happened. */
static int publish(hsc_config *cfg, hsc_policy_event *evs, size_t n, int json)
{
    hsc_err err = {0};
    static const char *const defaults[] = {"enable.idempotence", "true", "message.timeout.ms",
                                           "30000", NULL};
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "producer", defaults, &err);
    if (!conf) {
        fprintf(stderr, "hsc policy: config error: %s\n", err.msg);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "hsc policy: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    const char *topic = hsc_config_topic(cfg, "topics.policy_events");
    struct delivery d[4] = {{0}};
    int rc = 0;
    size_t sent = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *buf;
        size_t len;
        if (hsc_codec_encode_policy(&evs[i], &buf, &len, &err)) {
            fprintf(stderr, "hsc policy: %s\n", err.msg);
            rc = 2;
            break;
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(evs[i].user_id, strlen(evs[i].user_id)),
            RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_OPAQUE(&d[i]), RD_KAFKA_V_END);
        if (e) {
            fprintf(stderr, "hsc policy: produce: %s\n", rd_kafka_err2str(e));
            free(buf);
            rc = 1;
        } else {
            sent++;
        }
    }
    rd_kafka_flush(rk, 35000);
    rd_kafka_destroy(rk);
    json_t *out = json_array();
    for (size_t i = 0; i < sent; i++) {
        if (!d[i].done || d[i].failed) {
            fprintf(stderr, "hsc policy: %s event (version %lld) not delivered: %s\n",
                    hsc_policy_op_name(evs[i].op), (long long)evs[i].version,
                    d[i].done ? d[i].error : "timed out");
            rc = 1;
            continue;
        }
        if (json)
            json_array_append_new(
                out, json_pack("{s:s, s:s, s:I, s:s, s:i, s:I}", "user_id", evs[i].user_id, "op",
                               hsc_policy_op_name(evs[i].op), "version", (json_int_t)evs[i].version,
                               "topic", topic, "partition", (int)d[i].partition, "offset",
                               (json_int_t)d[i].offset));
        else
            printf("published %s for %s, version %lld (%s [%d] at offset %lld)\n",
                   hsc_policy_op_name(evs[i].op), evs[i].user_id, (long long)evs[i].version, topic,
                   (int)d[i].partition, (long long)d[i].offset);
    }
    if (json) {
        char *s = json_dumps(out, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
    }
    json_decref(out);
    return rc;
}

/* Splits "a,b,c" into l (empty items dropped). */
static int split_list(const char *s, hsc_strlist *l)
{
    hsc_strlist_clear(l);
    while (*s) {
        size_t n = strcspn(s, ",");
        size_t a = 0, b = n;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        if (b > a && hsc_strlist_push(l, s + a, b - a))
            return -1;
        s += n;
        if (*s)
            s++;
    }
    return 0;
}

static int append_list(const char *s, hsc_strlist *l)
{
    hsc_strlist more = {0};
    int rc = split_list(s, &more);
    for (size_t i = 0; !rc && i < more.n; i++)
        rc = hsc_strlist_push(l, more.v[i], strlen(more.v[i]));
    hsc_strlist_clear(&more);
    return rc;
}

static unsigned field_bit(const char *name)
{
    for (unsigned b = 1; b <= HSC_POLICY_PREFS; b <<= 1)
        if (!strcmp(hsc_policy_field_name(b), name))
            return b;
    return 0;
}

/* DIM:NAME=WEIGHT into ev's prefs. */
static int add_pref(hsc_policy_event *ev, const char *arg)
{
    const char *colon = strchr(arg, ':'), *eq = strrchr(arg, '=');
    if (!colon || !eq || eq < colon)
        return -1;
    char *end;
    errno = 0;
    double w = strtod(eq + 1, &end);
    if (errno || end == eq + 1 || *end)
        return -1;
    hsc_policy_pref *p = realloc(ev->prefs, (ev->nprefs + 1) * sizeof(*p));
    if (!p)
        return -1;
    ev->prefs = p;
    p = &ev->prefs[ev->nprefs];
    if ((size_t)(colon - arg) == 5 && !strncmp(arg, "theme", 5))
        p->theme = 1;
    else if ((size_t)(colon - arg) == 5 && !strncmp(arg, "genre", 5))
        p->theme = 0;
    else
        return -1;
    p->name = hsc_strndup(colon + 1, (size_t)(eq - colon - 1));
    p->weight = w;
    if (!p->name)
        return -1;
    ev->nprefs++;
    ev->set |= HSC_POLICY_PREFS;
    return 0;
}

static void event_init(hsc_policy_event *ev, const char *user, hsc_policy_op op)
{
    memset(ev, 0, sizeof(*ev));
    ev->v = HSC_SCHEMA_VERSION;
    ev->user_id = strdup(user);
    ev->op = op;
    ev->has_ts = true;
    ev->ts = hsc_now_ms();
}

static int parse_version(const char *s, int64_t *out)
{
    long long v;
    if (hsc_parse_ll(s, &v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int cmd_set(hsc_config *cfg, const char *user, int argc, char **argv, int json)
{
    hsc_policy_event ev[3]; /* set, block, unblock */
    event_init(&ev[0], user, HSC_POLICY_SET);
    event_init(&ev[1], user, HSC_POLICY_BLOCK);
    event_init(&ev[2], user, HSC_POLICY_UNBLOCK);
    int64_t version = (int64_t)hsc_now_ms() * 1000;
    int bad = 0;
    for (int i = 0; i < argc && !bad; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            continue;
        if (!v) {
            fprintf(stderr, "hsc policy set: %s needs a value\n", a);
            bad = 1;
            break;
        }
        i++;
        if (!strcmp(a, "--exclude-genres")) {
            bad = split_list(v, &ev[0].excluded_genres);
            ev[0].set |= HSC_POLICY_EXCLUDED_GENRES;
        } else if (!strcmp(a, "--languages")) {
            bad = split_list(v, &ev[0].languages);
            ev[0].set |= HSC_POLICY_LANGUAGES;
        } else if (!strcmp(a, "--blocked")) {
            bad = split_list(v, &ev[0].blocked_ids);
            ev[0].set |= HSC_POLICY_BLOCKED_IDS;
        } else if (!strcmp(a, "--max-maturity")) {
            long long m = 0;
            bad = hsc_parse_ll(v, &m) != 0;
            ev[0].max_maturity = (int32_t)m;
            ev[0].set |= HSC_POLICY_MAX_MATURITY;
            if (bad)
                fprintf(stderr, "hsc policy set: --max-maturity: '%s' is not a number\n", v);
        } else if (!strcmp(a, "--block")) {
            bad = append_list(v, &ev[1].ids);
        } else if (!strcmp(a, "--unblock")) {
            bad = append_list(v, &ev[2].ids);
        } else if (!strcmp(a, "--pref")) {
            if ((bad = add_pref(&ev[0], v)))
                fprintf(stderr,
                        "hsc policy set: --pref: '%s' is not genre:NAME=W or theme:NAME=W\n", v);
        } else if (!strcmp(a, "--clear")) {
            unsigned b = field_bit(v);
            if (!b)
                fprintf(stderr,
                        "hsc policy set: --clear: '%s' is not excluded_genres, max_maturity, "
                        "languages, blocked_ids or prefs\n",
                        v);
            bad = !b;
            ev[0].clear |= b;
        } else if (!strcmp(a, "--version")) {
            if ((bad = parse_version(v, &version)))
                fprintf(stderr, "hsc policy set: --version: '%s' is not a number >= 0\n", v);
        } else {
            fprintf(stderr, "hsc policy set: unknown option '%s'\n%s", a, CLI_POLICY_USAGE);
            bad = 1;
        }
    }
    hsc_policy_event out[3];
    size_t n = 0;
    if (ev[0].set || ev[0].clear)
        out[n++] = ev[0];
    else
        hsc_policy_event_clear(&ev[0]);
    for (int k = 1; k < 3; k++) {
        if (ev[k].ids.n)
            out[n++] = ev[k];
        else
            hsc_policy_event_clear(&ev[k]);
    }
    int rc = bad ? 2 : 0;
    if (!bad && !n) {
        fprintf(stderr, "hsc policy set: nothing to change\n%s", CLI_POLICY_USAGE);
        rc = 2;
    }
    hsc_err err = {0};
    for (size_t i = 0; !rc && i < n; i++) {
        out[i].version = version + (int64_t)i;
        if (hsc_codec_validate_policy(&out[i], &err)) {
            fprintf(stderr, "hsc policy set: %s\n", err.msg);
            rc = 2;
        }
    }
    if (!rc)
        rc = publish(cfg, out, n, json);
    for (size_t i = 0; i < n; i++)
        hsc_policy_event_clear(&out[i]);
    return rc;
}

static int cmd_erase(hsc_config *cfg, const char *user, int argc, char **argv, int json)
{
    hsc_policy_event ev;
    event_init(&ev, user, HSC_POLICY_ERASE);
    ev.version = (int64_t)hsc_now_ms() * 1000;
    int yes = 0, rc = 0;
    for (int i = 0; i < argc && !rc; i++) {
        if (!strcmp(argv[i], "--yes"))
            yes = 1;
        else if (!strcmp(argv[i], "--json"))
            continue;
        else if (!strcmp(argv[i], "--version") && i + 1 < argc) {
            if (parse_version(argv[++i], &ev.version)) {
                fprintf(stderr, "hsc policy erase: --version: '%s' is not a number >= 0\n",
                        argv[i]);
                rc = 2;
            }
        } else {
            fprintf(stderr, "hsc policy erase: unknown option '%s'\n%s", argv[i], CLI_POLICY_USAGE);
            rc = 2;
        }
    }
    if (!rc && !yes) {
        fprintf(stderr, "hsc policy erase: deletes everything hsc holds about %s; add --yes\n",
                user);
        rc = 2;
    }
    hsc_err err = {0};
    if (!rc && hsc_codec_validate_policy(&ev, &err)) {
        fprintf(stderr, "hsc policy erase: %s\n", err.msg);
        rc = 2;
    }
    if (!rc)
        rc = publish(cfg, &ev, 1, json);
    hsc_policy_event_clear(&ev);
    return rc;
}

/* ---- show ---- */

/*
 * Learned weights as hsc-query computes them: each learning event's delta,
 * halved every $3 days before the user's newest event (the newest 1000
 * events), summed per genre and theme of the title; or, when no half-life
 * is configured, the stored undecayed sums of user_preferences.
 */
static const char LEARNED_DECAYED[] =
    "        SELECT t.dim, t.name, sum(hsc_learning_delta(le.kind, le.value) *\n"
    "          power(0.5, (le.newest - le.ts) / (86400000.0 * $3::float8))) AS l, 0::float8 AS x\n"
    "        FROM (SELECT kind, value, content_id, ts, max(ts) OVER () AS newest\n"
    "              FROM learning_events WHERE user_id = $1 ORDER BY ts DESC LIMIT 1000) le\n"
    "        JOIN content c ON c.id = le.content_id AND NOT c.deleted\n"
    "        CROSS JOIN LATERAL (SELECT 'genre'::text AS dim, g AS name FROM unnest(c.genres) g\n"
    "                            UNION ALL SELECT 'theme'::text, th FROM unnest(c.themes) th) t\n"
    "        GROUP BY 1, 2\n";
static const char LEARNED_STORED[] =
    "        SELECT dim, name, weight AS l, 0::float8 AS x FROM user_preferences\n"
    "        WHERE user_id = $1 AND $3::float8 IS NULL\n";

/* Everything PostgreSQL holds about one user's policy, as one JSON object (%s: the learned part).
 */
static const char SHOW_SQL[] =
    "SELECT json_build_object(\n"
    "  'user_id', $1::text,\n"
    "  'exists', p.user_id IS NOT NULL,\n"
    "  'version', p.version, 'event_version', p.event_version,\n"
    "  'updated_at', p.updated_at,\n"
    "  'excluded_genres', coalesce(p.excluded_genres, '{}'),\n"
    "  'max_maturity', p.max_maturity,\n"
    "  'languages', coalesce(p.languages, '{}'),\n"
    "  'blocked_ids', coalesce(p.blocked_ids, '{}'),\n"
    "  'learning_events', (SELECT count(*) FROM learning_events WHERE user_id = $1),\n"
    "  'half_life_days', $3::float8,\n"
    "  'preferences', (SELECT coalesce(json_agg(json_build_object('dim', dim, 'name', name,\n"
    "        'learned', learned, 'explicit', explicit, 'weight', learned + explicit)\n"
    "        ORDER BY abs(learned + explicit) DESC, dim, name), '[]') FROM (\n"
    "      SELECT dim, name, sum(l) AS learned, sum(x) AS explicit FROM (\n"
    "%s"
    "        UNION ALL\n"
    "        SELECT dim, name, 0, weight FROM user_preference_overrides WHERE user_id = $1) w\n"
    "      GROUP BY dim, name) s),\n"
    "  'history', (SELECT coalesce(json_agg(json_build_object('version', event_version,\n"
    "        'op', op, 'change', change, 'ts', event_ts, 'applied_at', applied_at)\n"
    "        ORDER BY event_version DESC), '[]') FROM (\n"
    "      SELECT * FROM user_policy_history WHERE user_id = $1\n"
    "      ORDER BY event_version DESC LIMIT $2::int) h))\n"
    "FROM (SELECT 1) one LEFT JOIN user_policies p ON p.user_id = $1";

static void print_list(const char *label, json_t *a, const char *none)
{
    printf("  %-16s ", label);
    if (!json_array_size(a)) {
        printf("%s\n", none);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v)
        printf("%s%s", i ? ", " : "", json_string_value(v));
    printf("\n");
}

static void print_show(json_t *o)
{
    const char *user = json_string_value(json_object_get(o, "user_id"));
    if (!json_is_true(json_object_get(o, "exists"))) {
        printf("%s: no policy (a new user: no constraints, no preferences)\n", user);
        printf("  learning events  %lld\n",
               (long long)json_integer_value(json_object_get(o, "learning_events")));
        return;
    }
    json_t *ev = json_object_get(o, "event_version");
    printf("%s: policy version %lld, last policy event %s%lld%s, updated %s\n", user,
           (long long)json_integer_value(json_object_get(o, "version")),
           json_is_null(ev) ? "(" : "", (long long)json_integer_value(ev),
           json_is_null(ev) ? " none)" : "", json_string_value(json_object_get(o, "updated_at")));
    printf("Constraints:\n");
    print_list("excluded genres", json_object_get(o, "excluded_genres"), "none");
    json_t *mm = json_object_get(o, "max_maturity");
    if (json_is_integer(mm))
        printf("  %-16s %lld\n", "max maturity", (long long)json_integer_value(mm));
    else
        printf("  %-16s none\n", "max maturity");
    print_list("languages", json_object_get(o, "languages"), "any");
    print_list("blocked titles", json_object_get(o, "blocked_ids"), "none");
    json_t *prefs = json_object_get(o, "preferences");
    json_t *half = json_object_get(o, "half_life_days");
    if (json_is_number(half))
        printf("Preferences (%zu; learned weights decayed as hsc-query uses them now, half-life "
               "%g days; weight = learned + explicit):\n",
               json_array_size(prefs), json_number_value(half));
    else
        printf("Preferences (%zu; learned weights are the stored sums: no decay is configured; "
               "weight = learned + explicit):\n",
               json_array_size(prefs));
    printf("  %-6s %-24s %9s %9s %9s\n", "dim", "name", "learned", "explicit", "weight");
    size_t i;
    json_t *p;
    json_array_foreach (prefs, i, p)
        printf("  %-6s %-24s %9.3f %9.3f %9.3f\n", json_string_value(json_object_get(p, "dim")),
               json_string_value(json_object_get(p, "name")),
               json_number_value(json_object_get(p, "learned")),
               json_number_value(json_object_get(p, "explicit")),
               json_number_value(json_object_get(p, "weight")));
    printf("Learning events: %lld\n",
           (long long)json_integer_value(json_object_get(o, "learning_events")));
    json_t *h = json_object_get(o, "history");
    printf("History (newest first, %zu shown):\n", json_array_size(h));
    json_array_foreach (h, i, p) {
        char *change = json_dumps(json_object_get(p, "change"), JSON_COMPACT);
        printf("  %-20lld %-8s %s\n", (long long)json_integer_value(json_object_get(p, "version")),
               json_string_value(json_object_get(p, "op")), change ? change : "");
        free(change);
    }
}

static int cmd_show(hsc_config *cfg, const char *user, int argc, char **argv, int json)
{
    long long history = 10;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            continue;
        if (!strcmp(argv[i], "--history") && i + 1 < argc && !hsc_parse_ll(argv[i + 1], &history) &&
            history >= 0 && history <= 100) {
            i++;
            continue;
        }
        fprintf(stderr, "hsc policy show: bad option '%s'\n%s", argv[i], CLI_POLICY_USAGE);
        return 2;
    }
    PGconn *c = PQconnectdb(hsc_config_str(cfg, "pg.url"));
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "hsc policy show: postgresql: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    char lim[24], half[32];
    snprintf(lim, sizeof(lim), "%lld", history);
    /* decay as hsc-query applies it, when this build's query has a half-life */
    double hl = hsc_config_double(cfg, "query.preference_half_life_days");
    snprintf(half, sizeof(half), "%.17g", hl);
    const char *params[3] = {user, lim, hl > 0 ? half : NULL};
    char sql[sizeof(SHOW_SQL) + sizeof(LEARNED_DECAYED)];
    snprintf(sql, sizeof(sql), SHOW_SQL, hl > 0 ? LEARNED_DECAYED : LEARNED_STORED);
    PGresult *r = PQexecParams(c, sql, 3, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(stderr, "hsc policy show: %s", PQresultErrorMessage(r));
        rc = 1;
    } else if (json) {
        printf("%s\n", PQgetvalue(r, 0, 0));
    } else {
        json_t *o = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        if (o)
            print_show(o);
        json_decref(o);
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

int cli_policy(hsc_config *cfg, int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(CLI_POLICY_USAGE, stdout);
        return 0;
    }
    if (argc < 3 || argv[2][0] == '-') {
        fputs(CLI_POLICY_USAGE, stderr);
        return 2;
    }
    const char *sub = argv[1], *user = argv[2];
    hsc_err err = {0};
    hsc_policy_event probe = {
        .v = HSC_SCHEMA_VERSION, .user_id = (char *)user, .op = HSC_POLICY_ERASE};
    if (hsc_codec_validate_policy(&probe, &err)) {
        fprintf(stderr, "hsc policy: %s\n", err.msg);
        return 2;
    }
    int json = 0;
    for (int i = 3; i < argc; i++)
        json |= !strcmp(argv[i], "--json");
    if (!strcmp(sub, "set"))
        return cmd_set(cfg, user, argc - 3, argv + 3, json);
    if (!strcmp(sub, "show"))
        return cmd_show(cfg, user, argc - 3, argv + 3, json);
    if (!strcmp(sub, "erase"))
        return cmd_erase(cfg, user, argc - 3, argv + 3, json);
    fprintf(stderr, "hsc policy: unknown subcommand '%s'\n%s", sub, CLI_POLICY_USAGE);
    return 2;
}
