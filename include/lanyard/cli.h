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

int ly_cmd_iptables(int argc, char **argv); /* iptables [--remove] ... */

#endif
