/* JSON arrays of strings for store requests (json_list.h). */
#include "json_list.h"

json_t *hsc_json_strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *hsc_json_strlist(const hsc_strlist *l)
{
    return hsc_json_strings((const char *const *)l->v, l->n);
}
