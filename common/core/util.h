/*
 * Small helpers every module needs: clocks, number parsing, a growable byte
 * buffer, id validation and secret masking for logs.
 */
#ifndef HSC_UTIL_H
#define HSC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Wall-clock time in milliseconds since the epoch (deadlines, event ts). */
int64_t hsc_now_ms(void);

/* Monotonic time in microseconds (durations, latencies). */
int64_t hsc_mono_us(void);

/* Parses a whole decimal integer; returns 0 on success, -1 on junk or overflow. */
int hsc_parse_ll(const char *s, long long *out);

/* Copies s into out with the password of any URL or key=value secret masked. */
void hsc_mask_secrets(const char *s, char *out, size_t cap);

/* True if s (len bytes) is 1-128 of [A-Za-z0-9._:-], the content/user id alphabet. */
bool hsc_id_valid(const char *s, size_t len);

/* True if s (len bytes) is well-formed UTF-8 without NUL bytes. */
bool hsc_utf8_valid(const char *s, size_t len);

/*
 * Room for one element after the n in use of the array v (capacity *cap,
 * elem bytes each; first elements at first, then doubling): v itself, or
 * where it moved (*cap updated), or NULL (v and *cap untouched) when out of
 * memory. The one growth rule for the arrays that are appended to.
 */
void *hsc_grow(void *v, size_t n, size_t *cap, size_t elem, size_t first);

/* A growable byte buffer; zero-initialise, then append; free with hsc_buf_free. */
typedef struct hsc_buf {
    char *data;
    size_t len, cap;
} hsc_buf;

/* Appends n bytes; returns 0 or HSC_ENOMEM. */
int hsc_buf_append(hsc_buf *b, const void *p, size_t n);

/* Appends a printf-formatted string; returns 0 or HSC_ENOMEM. */
int hsc_buf_printf(hsc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Releases the buffer's memory and zeroes it. */
void hsc_buf_free(hsc_buf *b);

/*
 * Writes a finite float32 in decimal with 9 significant digits (trailing
 * zeros dropped), enough for strtof to give back the same bits; out needs 24
 * bytes. Returns the length. Much faster than printf("%.9g"), which matters
 * for a batch of 1000 x 768 floats.
 */
size_t hsc_fmt_float(float f, char *out);

/* Appends s as a JSON string literal (quoted, escaped); 0 or HSC_ENOMEM. */
int hsc_buf_json_str(hsc_buf *b, const char *s);

/* Reads a whole file into a malloc'd NUL-terminated string; NULL if it cannot be read. */
char *hsc_read_file(const char *path);

/* strdup of n bytes with a terminating NUL; NULL on allocation failure. */
char *hsc_strndup(const char *s, size_t n);

/* a followed by b in a new malloc'd string (NULL when out of memory). */
char *hsc_strcat2(const char *a, const char *b);

/*
 * Copies src into dst, a char array (its size is taken, so not a pointer:
 * -Wsizeof-pointer-memaccess says so), truncated and terminated: for a
 * context that keeps a setting past the config it came from.
 */
#define HSC_STRCPY(dst, src) ((void)snprintf((dst), sizeof(dst), "%s", (src)))

/*
 * An intrusive doubly linked list, for owners that unlink any element in
 * O(1) (requests in flight, connections, messages with a deadline): each
 * element has prev and next pointers, head points at the first.
 * HSC_DLIST_PUSH puts node first; HSC_DLIST_UNLINK takes it out and clears
 * its links. Macros because the element types differ.
 */
#define HSC_DLIST_PUSH(head, node)                                                                 \
    do {                                                                                           \
        (node)->prev = NULL;                                                                       \
        (node)->next = (head);                                                                     \
        if (head)                                                                                  \
            (head)->prev = (node);                                                                 \
        (head) = (node);                                                                           \
    } while (0)

#define HSC_DLIST_UNLINK(head, node)                                                               \
    do {                                                                                           \
        if ((node)->prev)                                                                          \
            (node)->prev->next = (node)->next;                                                     \
        else                                                                                       \
            (head) = (node)->next;                                                                 \
        if ((node)->next)                                                                          \
            (node)->next->prev = (node)->prev;                                                     \
        (node)->prev = (node)->next = NULL;                                                        \
    } while (0)

#endif
