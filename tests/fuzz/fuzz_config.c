/* ca.yaml and agent.yaml: the input written to one file per process
 * (rewritten for every input) and loaded as both. */
#include "lanyard/config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void) {
  unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  wolfSSL_Init();
  snprintf(path, sizeof path, "/tmp/lanyard-fuzz-config.XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) {
    perror("fuzz_config: mkstemp");
    abort();
  }
  close(fd);
  atexit(remove_file);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f)
    abort();
  if (size && fwrite(data, 1, size, f) != size)
    abort();
  if (fclose(f) != 0)
    abort();

  ly_diag_t diag;
  ly_ca_config_t *ca = NULL;
  ly_diag_init(&diag);
  if (ly_ca_config_load(path, &ca, &diag) == 0)
    ly_ca_config_free(ca);
  ly_diag_free(&diag);

  ly_agent_config_t *agent = NULL;
  ly_diag_init(&diag);
  if (ly_agent_config_load(path, &agent, &diag) == 0)
    ly_agent_config_free(agent);
  ly_diag_free(&diag);
  return 0;
}
