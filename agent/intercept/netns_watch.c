/* See include/lanyard/netns_watch.h. Polling if_nameindex() once a second
 * costs one netlink dump; a restart noticed within a second is as quick
 * as the restart policy that follows. */
#include "lanyard/netns_watch.h"

#include "lanyard/log.h"

#include <net/if.h>
#include <string.h>

#define WATCH_MS 1000
/* Docker restarts the agent at once, and refuses to start a container
 * that joins the namespace of one not running yet; after one refused
 * start its restart policy gives up. The new app container is usually up
 * within half a second of the old one's exit: wait a little longer. */
#define GRACE_MS 1000

int ly_netns_links(void) {
  struct if_nameindex *list = if_nameindex();
  if (!list)
    return -1;
  int n = 0;
  for (struct if_nameindex *i = list; i->if_index != 0; i++)
    if (strcmp(i->if_name, "lo") != 0)
      n++;
  if_freenameindex(list);
  return n;
}

static void on_grace(uv_timer_t *t) {
  ly_netns_watch_t *w = t->data;
  w->on_lost(w);
}

static void on_tick(uv_timer_t *t) {
  ly_netns_watch_t *w = t->data;
  int n = ly_netns_links();
  if (n > 0) {
    w->armed = 1;
  } else if (n == 0 && w->armed) {
    ly_log(LY_ERROR, "netns_lost", "reason",
           "every network interface but lo is gone: the container whose "
           "network namespace this agent shares has stopped or restarted; "
           "exiting in 1s",
           NULL);
    uv_timer_stop(t);
    uv_timer_start(t, on_grace, GRACE_MS, 0);
  }
}

void ly_netns_watch_start(ly_netns_watch_t *w, uv_loop_t *loop,
                          void (*on_lost)(ly_netns_watch_t *w)) {
  w->armed = ly_netns_links() > 0;
  w->on_lost = on_lost;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, on_tick, WATCH_MS, WATCH_MS);
  /* The timer alone must not keep the loop running after a stop. */
  uv_unref((uv_handle_t *)&w->timer);
}

void ly_netns_watch_stop(ly_netns_watch_t *w) {
  if (!uv_is_closing((uv_handle_t *)&w->timer))
    uv_close((uv_handle_t *)&w->timer, NULL);
}
