#include "lanyard/err.h"

#include <uv.h>

const char *ly_strerror(int err) {
  switch (err) {
#define XX(name, msg)                                                          \
  case LY_E##name:                                                             \
    return msg;
    LY_ERR_MAP(XX)
#undef XX
  default:
    return err < 0 ? uv_strerror(err) : "success";
  }
}

const char *ly_err_name(int err) {
  switch (err) {
#define XX(name, _)                                                            \
  case LY_E##name:                                                             \
    return #name;
    LY_ERR_MAP(XX)
#undef XX
  default:
    return err < 0 ? uv_err_name(err) : "OK";
  }
}
