/*
 * Errors as values. Every function that can fail returns one of these codes
 * (0 on success, negative on failure) and fills an hsc_err the caller owns,
 * whose message names the thing and the reason.
 */
#ifndef HSC_ERROR_H
#define HSC_ERROR_H

#include <stddef.h>

/* Result codes shared by every module. */
enum hsc_code {
    HSC_OK = 0,
    HSC_EINVAL = -1,     /* the input is bad and will never succeed: DLQ it */
    HSC_ETRANSIENT = -2, /* a backend is unreachable or busy: retry later */
    HSC_ENOMEM = -3,     /* out of memory */
    HSC_ECONFIG = -4,    /* a configuration key is missing or bad */
    HSC_EIO = -5,        /* a local file or pipe failed */
    HSC_ETIMEDOUT = -6,  /* a deadline passed */
    HSC_ENOTFOUND = -7,  /* the named thing does not exist */
    HSC_ECANCELED = -8,  /* shutdown cancelled the operation */
};

/*
 * A caller-owned error: a code and a message naming the thing and the reason.
 * A store client that received the error also fills in what the server said,
 * parsed once, so that nothing above it reads the message to decide.
 */
typedef struct hsc_err {
    int code;
    char msg[512];
    long http_status;      /* the HTTP status of the answer (0: none arrived) */
    int curl_code;         /* libcurl's CURLcode of a failed transfer (0: none) */
    long long server_code; /* the server's numeric code (Milvus: 100, 1100, ...; 0: none) */
    /* the server's status name: Neo4j's "Neo.ClientError.Schema...", PostgreSQL's SQLSTATE,
     * the kind of a Redis error ("WRONGTYPE") */
    char server_status[96];
    int not_found; /* the server says the named thing (a collection) does not exist */
} hsc_err;

/* Sets err (if not NULL) to code and a printf-style message, clearing the server's
 * part; returns code. */
int hsc_err_set(hsc_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with a context ("line 12: ..."), keeping its code. */
void hsc_err_prefix(hsc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to HSC_OK with an empty message and no server part. */
void hsc_err_clear(hsc_err *err);

/* The short name of a code ("invalid", "transient", ...), for logs and headers. */
const char *hsc_code_name(int code);

#endif
