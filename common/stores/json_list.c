/* JSON arrays of strings for store requests, and their bodies as text (json_list.h). */
#include "json_list.h"

#include "util.h"

json_t *hsc_json_strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i]))) { /* never a list that lost one */
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *hsc_json_strlist(const hsc_strlist *l)
{
    return hsc_json_strings((const char *const *)l->v, l->n);
}

/* The text being dumped, and whether a piece of it could not be kept. */
struct dump {
    hsc_buf b;
    int lost;
};

static int dump_piece(const char *piece, size_t size, void *data)
{
    struct dump *d = data;
    if (hsc_buf_append(&d->b, piece, size)) {
        d->lost = 1; /* jansson may go on past a failed piece: remember it */
        return -1;
    }
    return 0;
}

char *hsc_json_dump(const json_t *o, size_t flags)
{
    struct dump d = {{0}, 0};
    if (!o || json_dump_callback(o, dump_piece, &d, flags) || d.lost || !d.b.data) {
        hsc_buf_free(&d.b);
        return NULL;
    }
    return d.b.data;
}
