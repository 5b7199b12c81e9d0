/* The mesh-wide report: the last report of every agent, kept in memory by
 * the CA, bounded, and forgotten when an agent falls silent.
 *
 * Entries are keyed by (SPIFFE ID, instance): replicas share an identity
 * and report separately; the views add them up per identity. An entry
 * expires after three of its agent's report intervals (at least
 * LY_MESH_MIN_EXPIRY_MS) without a report. */
#ifndef LANYARD_CA_MESH_H
#define LANYARD_CA_MESH_H

#include "lanyard/prom.h"
#include "lanyard/rpc.h"
#include "lanyard/x509.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define LY_MESH_MAX_ENTRIES 4096 /* agents, all identities */
#define LY_MESH_MAX_INSTANCES 64 /* agents per identity */
#define LY_MESH_HISTORY 30       /* points per sparkline */
#define LY_MESH_MIN_EXPIRY_MS 15000
#define LY_MESH_MAX_PEERS 10 /* top peers kept per report */
#define LY_MESH_MAX_REASONS 32

typedef struct ly_mesh_s ly_mesh_t;

ly_mesh_t *ly_mesh_new(void);
void ly_mesh_free(ly_mesh_t *m);

/* Files a report under the verified client certificate `cert` (its ID,
 * expiry and serial: the report's own claims of these are not used).
 * When the table, or the identity's share of it, is full, the entry
 * silent longest makes room. 0; LY_EPARSE with *why for a malformed
 * report; LY_ETOO_BIG when out of memory. */
int ly_mesh_record(ly_mesh_t *m, const ly_cert_info_t *cert,
                   const Lanyard__Ca__V1__ReportRequest *r, uint64_t now_ms,
                   const char **why);

/* GET /api/mesh: one object per identity, worst success rate first
 * (the format is in docs/observability.md). malloc'd, NULL when out of memory.
 */
char *ly_mesh_json(ly_mesh_t *m, const char *trust_domain, uint64_t now_ms,
                   size_t *len);

/* The mesh's gauges, for the CA's /metrics. */
void ly_mesh_metrics(ly_mesh_t *m, uint64_t now_ms, ly_buf_t *b);

#endif
