/*
 * hsc-migrate: streams a legacy Neo4j catalogue (embeddings stored on the
 * nodes) and a legacy PostgreSQL policy table into hsc. Titles go to
 * hsc.content.events as ordinary ContentEvents, so the pipeline stores them
 * exactly as it stores anything else; the migrator only reads, validates,
 * publishes and remembers where it is.
 *
 * The pure parts (the mapping from config, the Cypher it sends, turning a
 * legacy row into an event or a problem, legacy policies) are exported for
 * the unit tests; migrate_main() is the command itself, shared by the
 * hsc-migrate binary and `hsc migrate`.
 */
#ifndef HSC_MIGRATE_H
#define HSC_MIGRATE_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "hsc/error.h"
#include "hsc/message.h"

/* The legacy node properties hsc reads, in the column order of the page query. */
enum migrate_prop {
    MP_TITLE,
    MP_DESCRIPTION,
    MP_KIND,
    MP_YEAR,
    MP_LANGUAGE,
    MP_MATURITY,
    MP_DURATION,
    MP_VERSION,
    MP_EMBEDDING,
    MP_COUNT
};

/* The legacy relationship types hsc reads (genre, theme, mood: to tag nodes; related: to titles).
 */
enum migrate_rel { MR_GENRE, MR_THEME, MR_MOOD, MR_RELATED, MR_COUNT };

/* Why a legacy title cannot be migrated. */
enum migrate_problem_kind {
    MPK_NONE = 0,
    MPK_BAD_ID,
    MPK_DUPLICATE_ID,
    MPK_NO_EMBEDDING,
    MPK_WRONG_DIMENSION,
    MPK_INVALID,
    MPK_POLICY, /* a legacy policy row */
    MPK_KINDS
};

/* A legacy rating name and the age it stands for ("PG-13" = 13). */
struct migrate_rating {
    char name[24];
    int age;
};

/* How the legacy graph and policy table are laid out (the migrate.* keys), validated. */
struct migrate_mapping {
    const char *label;          /* title nodes */
    const char *id_prop;        /* their id */
    int id_integer;             /* ids are integers (paged numerically) rather than strings */
    const char *prop[MP_COUNT]; /* "" = not present in the legacy graph */
    const char *rel[MR_COUNT];  /* "" = not present */
    const char *tag_name;       /* the name property of genre/theme/mood nodes */
    int dim;                    /* the embedding dimension hsc expects (milvus.dimension) */
    long long default_version;  /* when a node has no version */
    struct migrate_rating ratings[48];
    size_t nratings;
    /* legacy policies: "" table = none */
    const char *policy_table, *policy_user, *policy_excluded, *policy_maturity, *policy_languages;
};

/* One thing wrong with one legacy title or policy row. */
struct migrate_problem {
    enum migrate_problem_kind kind;
    char id[HSC_MAX_ID_LEN + 1]; /* the legacy id as text ("" when there is none) */
    char eid[96];                /* Neo4j's elementId of the node, or the table for policies */
    char detail[256];
};

/* A legacy policy turned into hsc's user_policies shape. */
struct migrate_policy {
    char user_id[HSC_MAX_ID_LEN + 1];
    hsc_strlist excluded, languages;
    int max_maturity; /* -1 = none */
};

/* The short name of a problem kind ("no_embedding"), as reports and the DLQ say it. */
const char *migrate_problem_name(enum migrate_problem_kind k);

/* Loads and checks the mapping from cfg: every name must be a plain identifier. */
int migrate_mapping_load(const hsc_config *cfg, struct migrate_mapping *mp, hsc_err *err);

/* True if s can be used as a label, property, relationship or column name. */
int migrate_ident_ok(const char *s);

/* Parses "G=0,PG=10,..." into mp's ratings. */
int migrate_parse_ratings(const char *spec, struct migrate_mapping *mp, hsc_err *err);

/* The age of a rating name (case-insensitive), or -1. */
int migrate_rating_age(const struct migrate_mapping *mp, const char *name);

/*
 * The page query: titles with id > $after in id order, $limit at a time, all
 * copies of each id included (so a duplicate straddling two pages is seen
 * whole), with their properties and related names/ids. malloc'd.
 */
char *migrate_page_cypher(const struct migrate_mapping *mp);

/* The query for nodes whose id is missing or of the wrong type (pagination cannot see them).
 * malloc'd. */
char *migrate_bad_id_cypher(const struct migrate_mapping *mp);

/* The query counting every title node. malloc'd. */
char *migrate_count_cypher(const struct migrate_mapping *mp);

/* The column count of a page row: id, copies, eid, the MP_COUNT properties, the MR_COUNT lists. */
#define MIGRATE_PAGE_COLUMNS (3 + MP_COUNT + MR_COUNT)

/*
 * Turns one page row into a content event (0), or fills pb and returns its
 * kind. The event is validated as the pipeline would validate it.
 */
int migrate_row_to_event(const struct migrate_mapping *mp, const json_t *row, hsc_content_event *ev,
                         struct migrate_problem *pb);

/* The legacy id of a page row as text (decimal for integer ids); 0, or -1 if it has none. */
int migrate_row_id(const json_t *row, char *out, size_t cap);

/* The legacy policy query (keyset pages of $1 > user, limit $2). malloc'd. */
char *migrate_policy_sql(const struct migrate_mapping *mp);

/*
 * Turns one legacy policy row (user text, then excluded, maturity and
 * languages as jsonb text) into pol, or fills pb and returns MPK_POLICY.
 */
int migrate_policy_from_row(const struct migrate_mapping *mp, const char *user,
                            const char *excluded_json, const char *maturity_json,
                            const char *languages_json, struct migrate_policy *pol,
                            struct migrate_problem *pb);

/* Frees the lists of pol. */
void migrate_policy_clear(struct migrate_policy *pol);

/* The command's help text (after the common options). */
extern const char MIGRATE_USAGE[];

/* hsc-migrate / hsc migrate: argv[0] is the command name. Returns the exit status. */
int migrate_main(hsc_config *cfg, int argc, char **argv);

#endif
