/* `lanyard version`: what was built, and whether the crypto is fast. A
 * sidecar sits in every byte's path: a wolfSSL without AES-NI and assembly
 * is ~40x slower at AES-GCM, so say which one this binary has. */
#include "lanyard/cli.h"

#include <wolfssl/options.h>
#include <wolfssl/version.h>

#include <stdio.h>

static const char *yes(int on) {
  return on ? "yes" : "no";
}

int ly_cmd_version(int argc, char **argv) {
  (void)argc;
  (void)argv;
  int aesni = 0, intelasm = 0, sp_asm = 0, armasm = 0, cpu_aes = 0;
#ifdef WOLFSSL_AESNI
  aesni = 1;
#endif
#ifdef USE_INTEL_SPEEDUP
  intelasm = 1;
#endif
#if defined(WOLFSSL_SP_X86_64_ASM) || defined(WOLFSSL_SP_ARM64_ASM)
  sp_asm = 1;
#endif
#ifdef WOLFSSL_ARMASM
  armasm = 1;
#endif
#if defined(__x86_64__)
  __builtin_cpu_init();
  cpu_aes = __builtin_cpu_supports("aes");
#endif
  printf("lanyard %s\n", LANYARD_VERSION);
  printf("wolfssl %s\n", LIBWOLFSSL_VERSION_STRING);
  printf("aesni %s\n", yes(aesni));
  printf("intel_asm %s\n", yes(intelasm));
  printf("arm_asm %s\n", yes(armasm));
  printf("sp_asm %s\n", yes(sp_asm));
  printf("cpu_aes %s\n", yes(cpu_aes));
  printf("hardware_acceleration %s\n",
         yes((aesni && intelasm && sp_asm && cpu_aes) || armasm));
  return 0;
}
