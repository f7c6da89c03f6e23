// SPDX-License-Identifier: MIT
// Compiles the public header alone as strict C++17.
#include "httpcache.h"

int headertest_cxx();
int headertest_cxx() {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf buf = HTTPCACHE_BUF_INIT;
  (void)buf;
  return static_cast<int>(opts.version);
}
