/*
 * The checkpoint of a migration (migrate_checkpoints, by migrate.name): the
 * last id whose page Kafka acknowledged, the counts so far, and the source it
 * was made for, so a restart resumes where the last one stopped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_internal.h"

int mig_checkpoint_load(struct mig *m, struct mig_checkpoint *c, hsc_err *err)
{
    memset(c, 0, sizeof(*c));
    const char *p[] = {m->name};
    PGresult *r =
        mig_pg_exec(m->pg,
                    "SELECT after_id, published, problems, finished_at IS NOT NULL, source"
                    " FROM migrate_checkpoints WHERE name = $1",
                    1, p, err);
    if (!r)
        return err->code;
    if (PQntuples(r)) {
        c->exists = 1;
        snprintf(c->after, sizeof(c->after), "%s", PQgetvalue(r, 0, 0));
        c->published = atoll(PQgetvalue(r, 0, 1));
        c->problems = atoll(PQgetvalue(r, 0, 2));
        c->finished = PQgetvalue(r, 0, 3)[0] == 't';
        snprintf(c->source, sizeof(c->source), "%s", PQgetvalue(r, 0, 4));
    }
    PQclear(r);
    return 0;
}

int mig_checkpoint_save(struct mig *m, const char *after, int finished, hsc_err *err)
{
    char pub[32], prob[32], total[32], pol[32];
    snprintf(pub, sizeof(pub), "%lld", m->published);
    snprintf(prob, sizeof(prob), "%lld", mig_title_problems(m));
    snprintf(total, sizeof(total), "%lld", m->total);
    snprintf(pol, sizeof(pol), "%lld", m->policies);
    const char *p[] = {m->name, m->source, after, pub, prob, total, pol, finished ? "t" : "f"};
    PGresult *r = mig_pg_exec(
        m->pg,
        "INSERT INTO migrate_checkpoints AS c (name, source, after_id, published, problems, total,"
        " policies, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " CASE WHEN $8::boolean THEN now() END)"
        " ON CONFLICT (name) DO UPDATE SET source = $2, after_id = $3, published = $4,"
        " problems = $5, total = $6, policies = $7, updated_at = now(),"
        " finished_at = CASE WHEN $8::boolean THEN now() END",
        8, p, err);
    if (!r)
        return err->code;
    PQclear(r);
    return 0;
}

int mig_checkpoint_reset(struct mig *m, hsc_err *err)
{
    const char *p[] = {m->name};
    PGresult *r = mig_pg_exec(m->pg, "DELETE FROM migrate_checkpoints WHERE name = $1", 1, p, err);
    if (!r)
        return err->code;
    PQclear(r);
    return 0;
}
