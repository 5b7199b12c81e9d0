/* Giving memory back after a burst (see lanyard/memtrim.h). */
#include "lanyard/memtrim.h"

#include <malloc.h>

static void on_tick(uv_timer_t *t) {
  (void)t;
  /* mallinfo2 sums every arena; it takes each arena's lock briefly. */
  struct mallinfo2 mi = mallinfo2();
  if (mi.fordblks >= LY_MEMTRIM_MIN_FREE && mi.fordblks > mi.uordblks)
    malloc_trim(0);
}

void ly_memtrim_start(ly_memtrim_t *m, uv_loop_t *loop) {
  uv_timer_init(loop, &m->timer);
  uv_timer_start(&m->timer, on_tick, LY_MEMTRIM_INTERVAL_MS,
                 LY_MEMTRIM_INTERVAL_MS);
  uv_unref((uv_handle_t *)&m->timer); /* never what keeps the loop alive */
}

void ly_memtrim_stop(ly_memtrim_t *m) {
  uv_close((uv_handle_t *)&m->timer, NULL);
}
