/* Giving memory back after a burst.
 *
 * glibc returns freed memory to the kernel only from the top of each
 * arena, and only past M_TRIM_THRESHOLD (the agent raises it to 4 MiB: bulk
 * transfers reuse the same buffers at a high rate). After thousands of
 * connections close, their memory stays free but resident, scattered
 * below live allocations. A timer on the control loop looks every
 * LY_MEMTRIM_INTERVAL_MS, and when more memory sits free in the heap than
 * is in use (and at least LY_MEMTRIM_MIN_FREE), calls malloc_trim(0),
 * which also hands back free pages in the middle of every arena. In steady
 * traffic free memory stays below what is in use, so nothing is trimmed
 * that is about to be reused.
 *
 * Thread: the loop's. Stop before closing the loop.
 */
#ifndef LANYARD_MEMTRIM_H
#define LANYARD_MEMTRIM_H

#include <uv.h>

#define LY_MEMTRIM_INTERVAL_MS 2000
#define LY_MEMTRIM_MIN_FREE (4u << 20)

typedef struct {
  uv_timer_t timer;
} ly_memtrim_t;

void ly_memtrim_start(ly_memtrim_t *m, uv_loop_t *loop);
void ly_memtrim_stop(ly_memtrim_t *m);

#endif
