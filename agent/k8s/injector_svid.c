/* `lanyard injector`'s serving certificate from the Lanyard CA: the
 * agent's identity module (request, renewal at renew_fraction of the
 * lifetime, backoff, bundle refresh) on a libuv loop of its own, in a
 * thread beside the injector's blocking accept loop. Each new SVID is
 * handed over as PEM; the injector swaps its TLS context in memory. */
#include "k8s/injector_svid.h"

#include "lanyard/fsutil.h"
#include "lanyard/identity.h"
#include "lanyard/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <uv.h>

static struct {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  ly_identity_t *id;
  ly_injector_svid_cb cb;
  void *data;
  int started;
} S;

static void on_change(ly_identity_t *id, void *data) {
  (void)data;
  ly_identity_view_t v;
  ly_identity_view(id, &v);
  if (!v.have)
    return; /* expired: the last certificate keeps serving (and fails) */
  char *chain = NULL, *key = NULL;
  size_t clen = 0, klen = 0;
  if (ly_chain_to_pem(v.chain, &chain, &clen) == 0 &&
      ly_key_to_pem(v.key, &key, &klen) == 0)
    S.cb(chain, clen, key, klen, v.info, S.data);
  free(chain);
  if (key)
    ly_wipe(key, klen); /* the private key: not left in freed memory */
  free(key);
}

static void on_stop(uv_async_t *a) {
  ly_identity_stop(S.id);
  uv_close((uv_handle_t *)a, NULL);
}

static void *run(void *arg) {
  (void)arg;
  uv_run(&S.loop, UV_RUN_DEFAULT);
  /* after ly_identity_stop the loop ends once its handles are closed */
  uv_loop_close(&S.loop);
  return NULL;
}

int ly_injector_svid_start(const ly_agent_config_t *cfg, ly_injector_svid_cb cb,
                           void *data, const char **why) {
  S.cb = cb;
  S.data = data;
  int rc = uv_loop_init(&S.loop);
  if (rc != 0)
    return rc;
  if ((rc = ly_identity_start(&S.loop, cfg, on_change, NULL, &S.id, why)) !=
      0) {
    uv_loop_close(&S.loop);
    return rc;
  }
  uv_async_init(&S.loop, &S.stop, on_stop);
  if ((rc = pthread_create(&S.thread, NULL, run, NULL)) != 0)
    return rc;
  S.started = 1;
  return 0;
}

void ly_injector_svid_stop(void) {
  if (!S.started)
    return;
  uv_async_send(&S.stop);
  pthread_join(S.thread, NULL);
  S.started = 0;
}
