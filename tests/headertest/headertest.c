/* SPDX-License-Identifier: MIT
 * Compiles the public header alone as strict C99: it must need nothing else. */
#include "httpcache.h"

int headertest_c(void);
int headertest_c(void) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf buf = HTTPCACHE_BUF_INIT;
  (void)buf;
  return (int)opts.version;
}
