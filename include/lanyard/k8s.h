/* Kubernetes sidecar injection: one rendering, shared by `lanyard inject`
 * (manifests) and `lanyard injector` (the admission webhook), so both give
 * the same pod.
 *
 * A "template" below is a JSON object with "metadata" and "spec": a Pod,
 * or the pod template of a workload (spec.template). Rendering edits it
 * in place. What was added is recorded in the annotation
 * lanyard.io/status, so injecting again changes nothing and removal puts
 * the template back as it was.
 *
 * The agent configures itself from environment variables the rendering
 * sets (a contract with `lanyard agent --from-env`):
 *   LANYARD_NAMESPACE, LANYARD_SERVICE_ACCOUNT, LANYARD_POD_NAME,
 *   LANYARD_POD_IP          downward API
 *   LANYARD_CA_ADDR         the CA, host:port
 *   LANYARD_TOKEN_FILE      the projected token (audience lanyard-ca)
 *   LANYARD_BUNDLE_FILE     the trust bundle from the ConfigMap
 *   LANYARD_ADMIN           admin listener, 0.0.0.0:15020
 *   LANYARD_INBOUND_PORT, LANYARD_OUTBOUND_PORT   capture ports
 *   LANYARD_MODE            strict | permissive
 *   LANYARD_TTL             requested SVID lifetime (only when annotated)
 *   LANYARD_APP_PROBES      the app's rewritten probes, JSON:
 *     {"<container>/<liveness|readiness|startup>":
 *        {"httpGet"|"tcpSocket": <the original handler>, "port": N}}
 *     where N is the handler's port resolved to a number.
 */
#ifndef LANYARD_K8S_H
#define LANYARD_K8S_H

#include <jansson.h>
#include <stddef.h>

#define LY_K8S_ANN_PREFIX "lanyard.io/"
#define LY_K8S_STATUS_ANN "lanyard.io/status"
#define LY_K8S_INIT_NAME "lanyard-init"
#define LY_K8S_AGENT_NAME "lanyard-agent"
#define LY_K8S_ADMIN_PORT 15020
#define LY_K8S_INBOUND_PORT 15006
#define LY_K8S_OUTBOUND_PORT 15001
#define LY_K8S_PROXY_UID 1337

typedef struct {
  const char *image;             /* the agent's image */
  const char *ca_addr;           /* LANYARD_CA_ADDR */
  const char *lanyard_namespace; /* never injected ("lanyard") */
  const char *bundle_configmap;  /* "lanyard-trust-bundle" */
  int native_sidecar;            /* default when no annotation says (1) */
  /* The namespace's lanyard.io/ annotations (an object of strings), or
   * NULL. The pod's own annotations win over these. */
  const json_t *ns_annotations;
} ly_k8s_opts_t;

/* Fills in the defaults above. */
void ly_k8s_opts_init(ly_k8s_opts_t *o);

typedef enum {
  LY_K8S_INJECTED,     /* the template changed: the sidecar is in */
  LY_K8S_UNCHANGED,    /* already injected with this rendering */
  LY_K8S_SKIPPED,      /* not injected; why says why (a warning) */
  LY_K8S_REMOVED,      /* ly_k8s_remove took the injection out */
  LY_K8S_NOT_INJECTED, /* ly_k8s_remove: nothing to take out */
  LY_K8S_ERROR         /* a bad annotation or template; why names it */
} ly_k8s_outcome_t;

/* Injects the sidecar into tmpl, a template in namespace ns (NULL: the
 * template's own metadata.namespace, else "default"). A template that
 * was injected before is rendered afresh from its original (so changed
 * annotations apply) and left alone if nothing differs. On SKIPPED an
 * earlier injection is taken out. On ERROR tmpl is unchanged. why gets
 * a one-line reason for SKIPPED and ERROR. */
ly_k8s_outcome_t ly_k8s_inject(json_t *tmpl, const char *ns,
                               const ly_k8s_opts_t *o, char *why,
                               size_t whylen);

/* Takes an injection out of tmpl, using lanyard.io/status. */
ly_k8s_outcome_t ly_k8s_remove(json_t *tmpl, char *why, size_t whylen);

/* Checks lanyard.io/ annotations (an object of strings) as the rendering
 * would: 0, or -1 with why naming the bad one. For options that give
 * defaults, so a bad one stops a command at start. */
int ly_k8s_check_annotations(const json_t *ann, char *why, size_t whylen);

/* The pod templates inside a Kubernetes object: a Pod itself, the
 * spec.template of Deployment, StatefulSet, DaemonSet, ReplicaSet,
 * ReplicationController and Job, a CronJob's
 * spec.jobTemplate.spec.template. NULL for other kinds (a List is walked
 * by the caller). */
json_t *ly_k8s_pod_template(json_t *obj);

/* RFC 6902 patch (an array) that turns `from` into `to`, with paths
 * escaped per RFC 6901. Arrays that grew at the front or back get "add"
 * operations, never a replacement of the whole array. NULL on ENOMEM. */
json_t *ly_k8s_json_diff(const json_t *from, const json_t *to);

/* YAML text of one document <-> JSON. ly_k8s_yaml_to_json returns 0 and
 * *out (NULL for a document that holds nothing), or -1 with a message
 * "line:col: problem" in err (line relative to the text). */
int ly_k8s_yaml_to_json(const char *text, size_t len, json_t **out, char *err,
                        size_t errlen);
/* A block-style YAML document (no "---"), malloc'd, or NULL. Strings that
 * would read back as another type are quoted. */
char *ly_k8s_json_to_yaml(const json_t *doc);

#endif
