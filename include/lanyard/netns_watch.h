/* Notices that the agent's network namespace has been abandoned.
 *
 * A sidecar that shares an app container's namespace (docker compose
 * `network_mode: service:app`) is left behind when the app container
 * restarts: the app gets a new namespace, and the old one, kept alive by
 * the sidecar alone, loses every interface but lo (docker/compose#6626).
 * The watch checks the interface list once a second; when interfaces
 * other than lo existed and are all gone, it logs event=netns_lost and,
 * a second later (the app's new container is starting), calls back, so
 * the agent can exit and its restart policy start it again in the app's
 * new namespace. A namespace that never had any interface
 * but lo is not watched (nothing can be lost there). */
#ifndef LANYARD_NETNS_WATCH_H
#define LANYARD_NETNS_WATCH_H

#include <uv.h>

typedef struct ly_netns_watch {
  uv_timer_t timer;
  int armed; /* saw an interface other than lo */
  void (*on_lost)(struct ly_netns_watch *w);
  void *data;
} ly_netns_watch_t;

/* Counts the interfaces other than lo (-1 when they cannot be listed). */
int ly_netns_links(void);

void ly_netns_watch_start(ly_netns_watch_t *w, uv_loop_t *loop,
                          void (*on_lost)(ly_netns_watch_t *w));
void ly_netns_watch_stop(ly_netns_watch_t *w);

#endif
