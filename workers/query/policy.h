/*
 * The user's policy as a search reads it: the JSON object QUERY_POLICY_SQL
 * returns, parsed into an hsc_policy. Pure.
 */
#ifndef HSC_QUERY_POLICY_H
#define HSC_QUERY_POLICY_H

#include "rank.h"

/*
 * Parses QUERY_POLICY_SQL's row (text) for user into p (zeroed first; free
 * with hsc_policy_clear). HSC_EINVAL when text is not a JSON object, and
 * then p is untouched.
 */
int query_policy_parse(const char *text, const char *user, hsc_policy *p);

#endif
