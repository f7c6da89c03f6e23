// SPDX-License-Identifier: MIT
// Version queries and options initialization.
#include <cstring>
#include <string>

#include "guard.hpp"

using namespace httpcache::capi;

extern "C" {

int httpcache_version_number(void) { return HTTPCACHE_VERSION_NUMBER; }

const char* httpcache_version_string(void) { return HTTPCACHE_VERSION_STRING; }

int httpcache_options_init(httpcache_options* opts, unsigned int version) {
  if (reject_if(!opts, "opts is NULL")) return HTTPCACHE_EINVALID;
  const size_t size = options_size(version);
  if (size == 0) {
    set_error(HTTPCACHE_EVERSION, "unsupported httpcache_options version " + std::to_string(version));
    return HTTPCACHE_EVERSION;
  }
  // Only the fields of that version: a caller built against an older header has a shorter struct.
  const httpcache_options defaults = HTTPCACHE_OPTIONS_INIT;
  std::memcpy(static_cast<void*>(opts), &defaults, size);
  opts->version = version;
  clear_error();
  return HTTPCACHE_OK;
}

}  // extern "C"
