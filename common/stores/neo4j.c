/*
 * The Neo4j HTTP client. A statement is one POST; the first one of a client
 * whose dialect is "auto" is preceded by a GET of the discovery document.
 * Statements that arrive while discovery is in flight wait in a queue.
 */
#include "neo4j.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_list.h"
#include "log.h"
#include "util.h"

/* ---------------- pure parts ---------------- */

int hsc_neo4j_build(hsc_neo4j_dialect d, const char *cypher, const json_t *params, char **body,
                    hsc_err *err)
{
    /* One envelope for both forms: the parameters are written as text, then wrapped. */
    *body = NULL;
    json_t *none = params ? NULL : json_object();
    char *text = hsc_json_dump(params ? params : none, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(none);
    if (!text)
        return hsc_err_set(err, HSC_ENOMEM, "neo4j statement: out of memory building the request");
    int rc = hsc_neo4j_build_text(d, cypher, text, body, err);
    free(text);
    return rc;
}

int hsc_neo4j_build_text(hsc_neo4j_dialect d, const char *cypher, const char *params, char **body,
                         hsc_err *err)
{
    *body = NULL;
    if (!hsc_utf8_valid(cypher, strlen(cypher)))
        return hsc_err_set(err, HSC_EINVAL, "neo4j statement: the Cypher is not valid UTF-8");
    hsc_buf b = {0};
    int rc = hsc_buf_printf(&b, "%s", d == HSC_NEO4J_TX ? "{\"statements\":[" : "");
    rc |= hsc_buf_printf(&b, "{\"statement\":");
    rc |= hsc_buf_json_str(&b, cypher);
    rc |= hsc_buf_printf(&b, ",\"parameters\":%s}%s", params, d == HSC_NEO4J_TX ? "]}" : "");
    if (rc) {
        hsc_buf_free(&b);
        return hsc_err_set(err, HSC_ENOMEM, "neo4j statement: out of memory building the request");
    }
    *body = b.data;
    return HSC_OK;
}

int hsc_neo4j_is_memory_limit(const char *code)
{
    static const char *const codes[] = {
        "Neo.TransientError.General.MemoryPoolOutOfMemoryError", /* a memory pool's limit */
        "Neo.TransientError.General.TransactionMemoryLimit",
        "Neo.ClientError.General.TransactionOutOfMemoryError", /* db.memory.transaction.max */
        "Neo.TransientError.General.OutOfMemoryError",         /* the heap */
    };
    for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (!strcmp(code, codes[i]))
            return 1;
    return 0;
}

int hsc_neo4j_classify(const char *code)
{
    if (!code)
        return HSC_ETRANSIENT;
    if (!strncmp(code, "Neo.ClientError.Security.", 25) ||
        !strcmp(code, "Neo.ClientError.Database.DatabaseNotFound"))
        return HSC_ECONFIG;
    /* A transaction that timed out or lost its lock client is worth running again; one
     * that outgrew the server's memory is too large, not invalid (its caller splits it). */
    if (!strncmp(code, "Neo.ClientError.Transaction.", 28) || hsc_neo4j_is_memory_limit(code))
        return HSC_ETRANSIENT;
    if (!strncmp(code, "Neo.ClientError.", 16))
        return HSC_EINVAL;
    return HSC_ETRANSIENT; /* TransientError, DatabaseError, anything new */
}

void hsc_neo4j_result_clear(hsc_neo4j_result *res)
{
    json_decref(res->fields);
    json_decref(res->rows);
    res->fields = res->rows = NULL;
}

/* The first of Neo4j's errors[] into err: its code as err->server_status, classified. */
static int first_error(json_t *errors, long status, hsc_err *err)
{
    json_t *e = json_array_get(errors, 0);
    if (!e)
        return HSC_OK;
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    hsc_err_set(err, hsc_neo4j_classify(code), "neo4j: %s: %s", code ? code : "(no code)",
                msg ? msg : "(no message)");
    err->http_status = status;
    snprintf(err->server_status, sizeof(err->server_status), "%s", code ? code : "");
    return err->code;
}

int hsc_neo4j_parse(hsc_neo4j_dialect d, long status, const char *body, size_t len,
                    hsc_neo4j_result *res, hsc_err *err)
{
    res->fields = res->rows = NULL;
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, 0, &je);
    if (o && json_is_object(o)) {
        int rc = first_error(json_object_get(o, "errors"), status, err);
        if (rc) {
            json_decref(o);
            return rc;
        }
    }
    if (status == 401 || status == 403) {
        json_decref(o);
        hsc_err_set(err, HSC_ECONFIG, "neo4j: HTTP %ld: check neo4j.user and neo4j.password",
                    status);
        err->http_status = status;
        return err->code;
    }
    if (status < 200 || status >= 300 || !o || !json_is_object(o)) {
        json_decref(o);
        return hsc_http_status_error(err, "neo4j", status, body, len, 140);
    }
    json_t *fields = NULL, *rows = NULL;
    if (d == HSC_NEO4J_TX) {
        json_t *r0 = json_array_get(json_object_get(o, "results"), 0);
        fields = json_object_get(r0, "columns");
        rows = json_array();
        size_t i;
        json_t *row;
        json_array_foreach (json_object_get(r0, "data"), i, row)
            json_array_append(rows, json_object_get(row, "row"));
        if (fields)
            json_incref(fields);
    } else {
        json_t *data = json_object_get(o, "data");
        fields = json_object_get(data, "fields");
        rows = json_object_get(data, "values");
        json_incref(fields);
        json_incref(rows);
    }
    json_decref(o);
    if (!json_is_array(fields) || !json_is_array(rows)) {
        json_decref(fields);
        json_decref(rows);
        return hsc_err_set(err, HSC_ETRANSIENT, "neo4j: response has no result table");
    }
    res->fields = fields;
    res->rows = rows;
    return HSC_OK;
}

hsc_neo4j_dialect hsc_neo4j_discover(const char *body, size_t len)
{
    json_t *o = json_loadb(body ? body : "", len, 0, NULL);
    hsc_neo4j_dialect d =
        json_is_string(json_object_get(o, "query")) ? HSC_NEO4J_QUERY_API : HSC_NEO4J_TX;
    json_decref(o);
    return d;
}

/* ---------------- the client ---------------- */

struct stmt {
    hsc_neo4j *n;
    char *cypher;
    json_t *params;
    char *params_text; /* instead of params: the parameters already written as JSON */
    hsc_neo4j_fn cb;
    void *arg;
    struct stmt *next;
};

struct hsc_neo4j {
    struct hsc_http_endpoint ep; /* the HTTP client, url, Basic auth, timeout and retries */
    char *database;
    hsc_neo4j_dialect want, dialect;
    int discovering;
    struct stmt *waiting, **waiting_tail; /* statements queued behind discovery */
};

static void stmt_free(struct stmt *s)
{
    free(s->cypher);
    json_decref(s->params);
    free(s->params_text);
    free(s);
}

static void on_answer(void *arg, const hsc_http_response *res, const hsc_err *herr)
{
    struct stmt *s = arg;
    hsc_neo4j_result r = {0};
    hsc_err err = {0};
    if (!res) {
        s->cb(s->arg, NULL, herr);
    } else if (hsc_neo4j_parse(s->n->dialect, res->status, res->body, res->len, &r, &err)) {
        s->cb(s->arg, NULL, &err);
    } else {
        r.seconds = res->seconds;
        s->cb(s->arg, &r, NULL);
        hsc_neo4j_result_clear(&r);
    }
    stmt_free(s);
}

int hsc_neo4j_is_read(const char *cypher)
{
    static const char *const WRITES[] = {"CREATE",  "MERGE", "SET",  "DELETE", "REMOVE", "DETACH",
                                         "FOREACH", "LOAD",  "DROP", "ALTER",  NULL};
    const char *p = cypher;
    while (*p) {
        if (*p == '\'' || *p == '"' || *p == '`') { /* literals and quoted names */
            char q = *p++;
            while (*p && *p != q)
                p += (*p == '\\' && p[1]) ? 2 : 1;
            if (*p)
                p++;
            continue;
        }
        if (!isalpha((unsigned char)*p) && *p != '_') {
            p++;
            continue;
        }
        const char *w = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        size_t len = (size_t)(p - w);
        int property = w > cypher && (w[-1] == '.' || w[-1] == '$' || w[-1] == ':');
        for (int i = 0; !property && WRITES[i]; i++)
            if (strlen(WRITES[i]) == len && !strncasecmp(w, WRITES[i], len))
                return 0;
        if (!property && len == 4 && !strncasecmp(w, "CALL", 4)) {
            const char *q = p + strspn(p, " \t\r\n");
            if (*q != '{')
                return 0; /* a procedure may write; a subquery is checked word by word */
        }
    }
    return 1;
}

static int request(hsc_neo4j *n, const char *method, const char *path, const char *body,
                   int idempotent, hsc_http_fn cb, void *arg, hsc_err *err)
{
    return hsc_http_json(&n->ep, method, path, body,
                         strcmp(method, "GET") ? "statement" : "discover", idempotent, cb, arg,
                         err);
}

static int send_stmt(struct stmt *s, hsc_err *err)
{
    hsc_neo4j *n = s->n;
    char *body;
    if (s->params_text ? hsc_neo4j_build_text(n->dialect, s->cypher, s->params_text, &body, err)
                       : hsc_neo4j_build(n->dialect, s->cypher, s->params, &body, err))
        return err->code;
    char path[512];
    snprintf(path, sizeof(path),
             n->dialect == HSC_NEO4J_TX ? "/db/%s/tx/commit" : "/db/%s/query/v2", n->database);
    int rc = request(n, "POST", path, body, hsc_neo4j_is_read(s->cypher), on_answer, s, err);
    free(body);
    return rc;
}

static void on_discovery(void *arg, const hsc_http_response *res, const hsc_err *herr)
{
    hsc_neo4j *n = arg;
    n->discovering = 0;
    struct stmt *q = n->waiting;
    n->waiting = NULL;
    n->waiting_tail = &n->waiting;
    hsc_err err = {0};
    if (res && res->status == 200) {
        n->dialect = hsc_neo4j_discover(res->body, res->len);
        hsc_log_info("neo4j dialect", "dialect", n->dialect == HSC_NEO4J_TX ? "tx" : "query-api",
                     "url", n->ep.url, NULL);
    } else if (res) {
        hsc_err_set(&err, HSC_ETRANSIENT, "neo4j: discovery: HTTP %ld", res->status);
        err.http_status = res->status;
        herr = &err;
    }
    while (q) {
        struct stmt *next = q->next;
        hsc_err e2 = {0};
        if (n->dialect == HSC_NEO4J_AUTO) {
            q->cb(q->arg, NULL, herr);
            stmt_free(q);
        } else if (send_stmt(q, &e2)) {
            q->cb(q->arg, NULL, &e2);
            stmt_free(q);
        }
        q = next;
    }
}

/* Queues or sends a statement whose parameters are params or params_text (taken over). */
static int run_stmt(hsc_neo4j *n, const char *cypher, json_t *params, char *params_text,
                    hsc_neo4j_fn cb, void *arg, hsc_err *err)
{
    struct stmt *s = calloc(1, sizeof(*s));
    if (!s || !(s->cypher = strdup(cypher))) {
        free(s);
        json_decref(params);
        free(params_text);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    s->n = n;
    s->params = params;
    s->params_text = params_text;
    s->cb = cb;
    s->arg = arg;
    if (n->dialect != HSC_NEO4J_AUTO) {
        int rc = send_stmt(s, err);
        if (rc)
            stmt_free(s);
        return rc;
    }
    *n->waiting_tail = s;
    n->waiting_tail = &s->next;
    if (!n->discovering) {
        int rc = request(n, "GET", "/", NULL, 1, on_discovery, n, err);
        if (rc) {
            n->waiting = NULL; /* s is the only one: nothing else waits without discovery */
            n->waiting_tail = &n->waiting;
            stmt_free(s);
            return rc;
        }
        n->discovering = 1;
    }
    return HSC_OK;
}

int hsc_neo4j_run(hsc_neo4j *n, const char *cypher, json_t *params, hsc_neo4j_fn cb, void *arg,
                  hsc_err *err)
{
    return run_stmt(n, cypher, params, NULL, cb, arg, err);
}

int hsc_neo4j_run_text(hsc_neo4j *n, const char *cypher, char *params, hsc_neo4j_fn cb, void *arg,
                       hsc_err *err)
{
    return run_stmt(n, cypher, NULL, params, cb, arg, err);
}

hsc_neo4j_dialect hsc_neo4j_dialect_of(const hsc_neo4j *n)
{
    return n->dialect;
}

hsc_neo4j *hsc_neo4j_new(struct ev_loop *loop, hsc_http *http, const struct hsc_neo4j_settings *s,
                         hsc_err *err)
{
    hsc_neo4j *n = calloc(1, sizeof(*n));
    if (!n) {
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    (void)loop; /* every wait is the HTTP client's, on its loop */
    if (hsc_http_endpoint_init(&n->ep, http, "neo4j", s->url, NULL, HSC_HTTP_POLICY_OF(s), err)) {
        free(n);
        return NULL;
    }
    n->database = strdup(s->database && *s->database ? s->database : "neo4j");
    /* Basic auth, built once: "user:password" in base64. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    hsc_buf up = {0}, h = {0};
    hsc_buf_printf(&up, "%s:%s", s->user ? s->user : "", s->password ? s->password : "");
    hsc_buf_printf(&h, "Authorization: Basic ");
    for (size_t i = 0; i < up.len; i += 3) {
        unsigned v = (unsigned char)up.data[i] << 16;
        if (i + 1 < up.len)
            v |= (unsigned char)up.data[i + 1] << 8;
        if (i + 2 < up.len)
            v |= (unsigned char)up.data[i + 2];
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                     i + 1 < up.len ? b64[(v >> 6) & 63] : '=', i + 2 < up.len ? b64[v & 63] : '='};
        hsc_buf_append(&h, q, 4);
    }
    hsc_buf_append(&h, "", 1);
    hsc_buf_free(&up);
    n->ep.auth = h.data;
    if (!n->database || !n->ep.auth) {
        hsc_neo4j_free(n);
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    n->want = n->dialect = s->dialect;
    n->waiting_tail = &n->waiting;
    return n;
}

void hsc_neo4j_free(hsc_neo4j *n)
{
    if (!n)
        return;
    while (n->waiting) {
        struct stmt *s = n->waiting;
        n->waiting = s->next;
        hsc_err err;
        hsc_err_set(&err, HSC_ECANCELED, "neo4j: cancelled by shutdown");
        s->cb(s->arg, NULL, &err);
        stmt_free(s);
    }
    hsc_http_endpoint_destroy(&n->ep);
    free(n->database);
    free(n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hsc_neo4j_load_statements(const char *dir, char ***stmts, size_t *n, hsc_err *err)
{
    *stmts = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return hsc_err_set(err, HSC_ECONFIG, "paths.schemas: cannot open %s", dir);
    char **files = NULL;
    size_t nf = 0;
    struct dirent *e;
    int rc = HSC_OK;
    while (!rc && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 7 && !strcmp(e->d_name + l - 7, ".cypher")) {
            char **nfiles = realloc(files, (nf + 1) * sizeof(char *));
            if (nfiles)
                files = nfiles;
            if (!nfiles || !(files[nf] = strdup(e->d_name)))
                rc = hsc_err_set(err, HSC_ENOMEM, "%s: out of memory listing the statements", dir);
            else
                nf++;
        }
    }
    closedir(d);
    if (!rc)
        qsort(files, nf, sizeof(char *), cmp_str);
    for (size_t i = 0; i < nf && !rc; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "r");
        if (!f) {
            rc = hsc_err_set(err, HSC_ECONFIG, "cannot read %s", path);
            break;
        }
        hsc_buf cur = {0};
        char *line = NULL;
        size_t cap = 0;
        while (!rc && getline(&line, &cap, f) > 0) {
            char *c = strstr(line, "//");
            if (c)
                *c = '\0';
            for (char *p = line; *p && !rc; p++) {
                if (hsc_buf_append(&cur, *p == ';' ? "" : p, 1)) { /* a statement ends in a NUL */
                    rc = hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", path);
                    break;
                }
                if (*p != ';')
                    continue;
                char *st = cur.data;
                while (*st == ' ' || *st == '\n' || *st == '\t')
                    st++;
                if (*st) {
                    char **ns = realloc(*stmts, (*n + 1) * sizeof(char *));
                    if (ns)
                        *stmts = ns;
                    if (!ns || !((*stmts)[*n] = strdup(st)))
                        rc = hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", path);
                    else
                        (*n)++;
                }
                cur.len = 0;
            }
        }
        free(line);
        hsc_buf_free(&cur);
        fclose(f);
    }
    for (size_t i = 0; i < nf; i++)
        free(files[i]);
    free(files);
    return rc;
}

void hsc_neo4j_settings_load(const hsc_config *cfg, struct hsc_neo4j_settings *s)
{
    const char *d = hsc_config_str(cfg, "neo4j.dialect");
    *s = (struct hsc_neo4j_settings){
        .url = hsc_config_str(cfg, "neo4j.url"),
        .user = hsc_config_str(cfg, "neo4j.user"),
        .password = hsc_config_str(cfg, "neo4j.password"),
        .database = hsc_config_str(cfg, "neo4j.database"),
        .dialect = !strcmp(d, "query") ? HSC_NEO4J_QUERY_API
                   : !strcmp(d, "tx")  ? HSC_NEO4J_TX
                                       : HSC_NEO4J_AUTO,
        HSC_HTTP_POLICY_FIELDS(cfg, "neo4j.timeout_ms", "neo4j.retries"),
    };
}
