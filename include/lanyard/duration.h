/* Durations as people write them in configs and flags: "90s", "10m",
 * "1h", "1h30m", "250ms", "7d". Whole numbers only; units ms, s, m, h, d;
 * one or more number+unit pairs, largest unit first is not required. */
#ifndef LANYARD_DURATION_H
#define LANYARD_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses s into milliseconds. 0 or LY_EDURATION with *why set. */
int ly_duration_parse(const char *s, uint64_t *ms, const char **why);

/* Formats ms compactly ("1h30m", "20s", "250ms") into buf. */
const char *ly_duration_format(uint64_t ms, char *buf, size_t len);

#endif
