/* `lanyard injector`'s serving certificate from the CA (injector_svid.c). */
#ifndef LANYARD_K8S_INJECTOR_SVID_H
#define LANYARD_K8S_INJECTOR_SVID_H

#include "lanyard/config.h"
#include "lanyard/x509.h"

#include <stddef.h>

/* Called from the identity thread with each new SVID: the chain (SVID
 * first) and its key as PEM, valid only during the call. */
typedef void (*ly_injector_svid_cb)(const char *chain, size_t chain_len,
                                    const char *key, size_t key_len,
                                    const ly_cert_info_t *info, void *data);

/* Starts the identity lifecycle for cfg (spiffe_id, dns_name, ca.*,
 * svid.*) on a thread of its own. 0, or an error with *why. cfg must
 * outlive the thread. */
int ly_injector_svid_start(const ly_agent_config_t *cfg, ly_injector_svid_cb cb,
                           void *data, const char **why);
void ly_injector_svid_stop(void);

#endif
