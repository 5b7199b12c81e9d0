/* `lanyard agent -c agent.yaml [--check]` */
#include "lanyard/cli.h"
#include "lanyard/config.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/identity.h"
#include "lanyard/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  ly_identity_t *identity;
  uv_signal_t sigint, sigterm;
} agent_t;

/* --check beyond the schema: the files the agent will need are there and
 * make sense. */
static void check_files(const ly_agent_config_t *cfg, ly_diag_t *diag) {
  char *pem = NULL;
  size_t len = 0;
  const char *why = NULL;
  int rc = ly_file_read(cfg->ca.bundle, 1u << 20, &pem, &len);
  if (rc != 0) {
    ly_diag_add(diag, cfg->ca.bundle, 0, 0, "cannot read ca.bundle: %s",
                ly_strerror(rc));
  } else {
    ly_chain_t roots = {0};
    if (ly_chain_from_pem(pem, len, &roots, &why) != 0)
      ly_diag_add(diag, cfg->ca.bundle, 0, 0, "bad ca.bundle: %s", why);
    ly_chain_free(&roots);
    free(pem);
  }
  const char *token =
      cfg->ca.token_file ? cfg->ca.token_file : cfg->ca.k8s_token_file;
  if (access(token, R_OK) != 0)
    ly_diag_add(diag, token, 0, 0, "cannot read the token file");
  if (cfg->svid.dir && access(cfg->svid.dir, W_OK) != 0)
    ly_diag_add(diag, cfg->svid.dir, 0, 0,
                "svid.dir is not a writable "
                "directory");
}

static void on_signal(uv_signal_t *s, int signum) {
  agent_t *a = s->data;
  ly_log(LY_INFO, "agent_stopping", "signal",
         signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  ly_identity_stop(a->identity);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
}

int ly_cmd_agent(int argc, char **argv) {
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"check", no_argument, NULL, 'k'},
                                       {"log-json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *cfg_path = NULL, *why = NULL;
  int check = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      cfg_path = optarg;
      break;
    case 'k':
      check = 1;
      break;
    case 'j':
      ly_log_set_json(1);
      break;
    case 'h':
      printf("usage: lanyard agent -c agent.yaml [--check] [--log-json]\n");
      return LY_EXIT_OK;
    default:
      return LY_EXIT_USAGE;
    }
  }
  if (!cfg_path) {
    fprintf(stderr, "lanyard agent: -c agent.yaml is required\n");
    return LY_EXIT_USAGE;
  }
  ly_diag_t diag;
  ly_diag_init(&diag);
  ly_agent_config_t *cfg = NULL;
  int rc = LY_EXIT_USAGE;
  if (ly_agent_config_load(cfg_path, &cfg, &diag) != 0) {
    ly_diag_print(&diag, stderr);
    goto out;
  }
  if (check) {
    check_files(cfg, &diag);
    ly_diag_print(&diag, stderr);
    if (diag.n == 0) {
      printf("%s: OK\n", cfg_path);
      rc = LY_EXIT_OK;
    }
    goto out;
  }
  uv_loop_t *loop = uv_default_loop();
  agent_t a = {0};
  rc = ly_identity_start(loop, cfg, NULL, NULL, &a.identity, &why);
  if (rc != 0) {
    ly_log(LY_ERROR, "agent_start_failed", "reason",
           why ? why : ly_strerror(rc), NULL);
    rc = LY_EXIT_FAIL;
    goto out;
  }
  uv_signal_init(loop, &a.sigint);
  uv_signal_init(loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  ly_log(LY_INFO, "agent_started", "spiffe_id", cfg->spiffe_id, "ca",
         cfg->ca.address.host, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  rc = LY_EXIT_OK;
out:
  ly_agent_config_free(cfg);
  ly_diag_free(&diag);
  return rc;
}
