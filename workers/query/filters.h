/*
 * The hard constraints of a search as each backend takes them: the Milvus
 * filter expression (query_milvus_filter, declared in query.h) and the graph
 * filter of the candidate query. Pure.
 */
#ifndef HSC_QUERY_FILTERS_H
#define HSC_QUERY_FILTERS_H

#include "graph.h"
#include "rank.h"

/*
 * Fills gf from the request's filters and, when the policy is known (policy
 * not NULL), the user's hard constraints. A requested language narrows the
 * user's languages to one: it is pushed into langs, which gf then points to,
 * so langs must outlive gf (the caller clears it). gf points into req,
 * policy and langs.
 */
void query_graph_filter(const hsc_search_request *req, const hsc_policy *policy,
                        double history_weight, hsc_strlist *langs, hsc_graph_filter *gf);

#endif
