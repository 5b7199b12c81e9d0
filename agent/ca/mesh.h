/* The mesh-wide report: the last report of every agent, kept in memory by
 * the CA, bounded.
 *
 * Entries are keyed by (SPIFFE ID, instance): replicas share an identity
 * and report separately; the views add them up per identity. An agent
 * silent for three of its report intervals is shown as stale (an agent
 * that stops reporting must be seen, not vanish), and forgotten
 * LY_MESH_KEEP_STALE_MS later. */
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
#define LY_MESH_KEEP_STALE_MS (10 * 60 * 1000)
#define LY_MESH_MAX_ROOTS 16 /* bundle fingerprints kept per report */
#define LY_MESH_MAX_PEERS 10 /* top peers kept per report */
#define LY_MESH_MAX_REASONS 32

typedef struct ly_mesh_s ly_mesh_t;

ly_mesh_t *ly_mesh_new(void);
void ly_mesh_free(ly_mesh_t *m);

/* Files a report under the verified client certificate `cert` (its ID,
 * expiry and serial: the report's own claims of these are not used),
 * which chains to the root whose SHA-256 is `svid_root` (NULL or ""
 * unknown: what `lanyard ca root retire` checks), from `peer` ("ip:port"
 * of the connection).
 * When the table, or the identity's share of it, is full, the entry
 * silent longest makes room. 0; LY_EPARSE with *why for a malformed
 * report; LY_ETOO_BIG when out of memory. */
int ly_mesh_record(ly_mesh_t *m, const ly_cert_info_t *cert,
                   const char *svid_root, const char *peer,
                   const Lanyard__Ca__V1__ReportRequest *r, uint64_t now_ms,
                   const char **why);

/* GET /api/mesh: one object per identity, worst success rate first
 * (the format is in docs/observability.md), and the CA's own `roots` and
 * `signing` chain (the signing certificate first), whose expiry it shows.
 * malloc'd, NULL when out of memory. */
char *ly_mesh_json(ly_mesh_t *m, const char *trust_domain,
                   const ly_chain_t *roots, const ly_chain_t *signing,
                   uint64_t now_ms, size_t *len);

/* How operators name a workload: "ns/sa" for an ID of the Kubernetes
 * shape spiffe://td/ns/NS/sa/SA, else the ID's path. */
void ly_mesh_workload_name(const char *spiffe_id, char *out, size_t len);

/* The mesh's gauges, for the CA's /metrics. */
void ly_mesh_metrics(ly_mesh_t *m, uint64_t now_ms, ly_buf_t *b);

#endif
