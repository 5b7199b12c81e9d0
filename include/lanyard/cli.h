/* Subcommands. Each takes the arguments after its name (argv[0] is the
 * subcommand's own name, for getopt) and returns the process exit code:
 * 0 success, 1 failure at run time, 2 bad usage or configuration. */
#ifndef LANYARD_CLI_H
#define LANYARD_CLI_H

#define LY_EXIT_OK 0
#define LY_EXIT_FAIL 1
#define LY_EXIT_USAGE 2

int ly_cmd_version(int argc, char **argv);
int ly_cmd_ca(int argc, char **argv);    /* ca init|token|serve */
int ly_cmd_agent(int argc, char **argv); /* agent -c agent.yaml [--check] */
int ly_cmd_svid(int argc, char **argv);  /* svid verify ... CERT.pem */

int ly_cmd_iptables(int argc, char **argv);    /* iptables [--remove] ... */
int ly_cmd_status(int argc, char **argv);      /* the local agent, readable */
int ly_cmd_mesh(int argc, char **argv);        /* the mesh-wide report */
int ly_cmd_check(int argc, char **argv);       /* the mesh's health, checked */
int ly_cmd_inject(int argc, char **argv);      /* inject -f FILE: k8s sidecar */
int ly_cmd_injector(int argc, char **argv);    /* the admission webhook */
int ly_cmd_healthcheck(int argc, char **argv); /* exit 0 when /readyz is 200 */
int ly_cmd_gameday(int argc, char **argv);     /* drills: list, run SCENARIO */

/* A command's error, the one style for all of them:
 * "lanyard <command>: <message>\n" on stderr. `command` is the words
 * after "lanyard" ("ca token", "svid verify"). */
void ly_cli_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Names the command for getopt's own messages (an unknown option, a
 * missing value), which start with argv[0]: it becomes "lanyard
 * <command>", the prefix of ly_cli_error. Call before getopt_long. */
void ly_cli_name(char **argv, const char *command);

/* The options every long-running command takes: -c FILE (required),
 * --check, --log-json, --log-level LEVEL (applied to the logger here);
 * the agent also --from-env and --iptables.
 * `name` is the command for messages ("agent", "ca serve"), `config_name`
 * the file it wants ("agent.yaml"). Returns -1 when the command should
 * proceed, else the exit code (0 after --help). */
typedef struct {
  const char *config;
  int check;
  int from_env; /* agent only: --from-env instead of -c */
  int iptables; /* agent --iptables: install the rules, then drop to 1337 */
} ly_daemon_args_t;

int ly_daemon_args(int argc, char **argv, const char *name,
                   const char *config_name, ly_daemon_args_t *out);

#endif
