/* SPIFFE IDs, per the SPIFFE ID standard (SPIFFE-ID.md):
 *
 *   spiffe://<trust-domain>[/<segment>...]
 *
 * - scheme "spiffe", lowercase; then "://"
 * - trust domain: 1..255 of [a-z0-9.-_]; no userinfo, port, or uppercase
 * - path: empty, or "/"-separated segments of [a-zA-Z0-9.-_], none empty,
 *   "." or ".."; no trailing "/"
 * - no query, fragment or percent-encoding; at most 2048 bytes in all.
 *
 * An ID with an empty path names the trust domain itself: a signing
 * certificate carries it, a workload never does (X509-SVID 3.1 and 5.2:
 * a leaf's SPIFFE ID needs a path). ly_spiffe_id_parse accepts it, for
 * where a trust domain is meant; ly_spiffe_workload_id_parse does not.
 *
 * Lanyard reserves the path prefix /lanyard/ of every trust domain for its
 * own components (the CA serves as spiffe://<td>/lanyard/ca); the CA never
 * issues such IDs to workloads.
 */
#ifndef LANYARD_SPIFFE_H
#define LANYARD_SPIFFE_H

#include <stddef.h>

#define LY_SPIFFE_ID_MAX 2048
#define LY_TRUST_DOMAIN_MAX 255

typedef struct {
  char id[LY_SPIFFE_ID_MAX + 1]; /* the whole ID, NUL-terminated */
  size_t td_off, td_len;         /* the trust domain within id */
  size_t path_off;               /* path ("" or "/a/b") at id + path_off */
} ly_spiffe_id_t;

/* Parses s[0..len). Returns 0, or LY_ESPIFFE_ID with *why set to a static
 * reason (why may be NULL). */
int ly_spiffe_id_parse(const char *s, size_t len, ly_spiffe_id_t *out,
                       const char **why);

/* The reason ly_spiffe_workload_id_parse gives for an ID without a path. */
#define LY_SPIFFE_NEEDS_PATH "a workload SPIFFE ID needs a path (X509-SVID 3.1)"

/* As ly_spiffe_id_parse, for a workload's ID (an agent's, a token's, a
 * leaf SVID's): the path must not be empty. */
int ly_spiffe_workload_id_parse(const char *s, size_t len, ly_spiffe_id_t *out,
                                const char **why);

/* Validates a trust domain name alone ("example.org"). */
int ly_trust_domain_check(const char *td, size_t len, const char **why);

/* Does `id` belong to trust domain `td`? 1 or 0. */
int ly_spiffe_id_in_domain(const ly_spiffe_id_t *id, const char *td);

/* Is the ID's path under Lanyard's reserved /lanyard/ prefix? */
int ly_spiffe_id_reserved(const ly_spiffe_id_t *id);

/* A pattern is an exact workload SPIFFE ID, or an ID followed by "/*",
 * which matches every ID strictly below it ("spiffe://td/*" matches all of
 * td's IDs). Validates the pattern; 0 or LY_ESPIFFE_ID. */
int ly_spiffe_pattern_check(const char *pattern, const char **why);

/* 1 if `id` (a valid ID) matches the valid `pattern`, else 0. */
int ly_spiffe_pattern_match(const char *pattern, const char *id);

/* Builds spiffe://<td>/ns/<ns>/sa/<sa> into out (validated). */
int ly_spiffe_id_for_k8s(const char *td, const char *ns, const char *sa,
                         ly_spiffe_id_t *out, const char **why);

#endif
