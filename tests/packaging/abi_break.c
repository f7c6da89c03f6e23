/* SPDX-License-Identifier: MIT
 * A deliberately incompatible build of a few httpcache functions (a changed parameter list, a
 * struct with a field removed), used to prove that the ABI gate refuses such a change. */
#include <stdint.h>

typedef struct httpcache_options {
  unsigned int version;
  uint32_t connect_timeout_ms; /* command_timeout_ms and the rest removed: the layout changed */
} httpcache_options;

__attribute__((visibility("default"))) int httpcache_options_init(httpcache_options *opts, unsigned int version,
                                                                  int extra) {
  (void)extra;
  opts->version = version;
  return 0;
}

__attribute__((visibility("default"))) int httpcache_version_number(void) { return 10000; }
