// SPDX-License-Identifier: MIT
// Version queries and options initialization.
#include <string>

#include "guard.hpp"

using namespace httpcache::capi;

extern "C" {

int httpcache_version_number(void) { return HTTPCACHE_VERSION_NUMBER; }

const char* httpcache_version_string(void) { return HTTPCACHE_VERSION_STRING; }

int httpcache_options_init(httpcache_options* opts, unsigned int version) {
  if (reject_if(!opts, "opts is NULL")) return HTTPCACHE_EINVALID;
  if (version != HTTPCACHE_OPTIONS_VERSION) {
    set_error(HTTPCACHE_EVERSION, "unsupported httpcache_options version " + std::to_string(version));
    return HTTPCACHE_EVERSION;
  }
  httpcache_options defaults = HTTPCACHE_OPTIONS_INIT;
  *opts = defaults;
  clear_error();
  return HTTPCACHE_OK;
}

}  // extern "C"
