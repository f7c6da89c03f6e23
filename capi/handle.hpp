// SPDX-License-Identifier: MIT
// The opaque C handles: thin holders of core objects, defined only here.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../core/cache.hpp"
#include "httpcache.h"

struct httpcache_cache {
  std::unique_ptr<httpcache::cache> impl;
};

struct httpcache_async {
  httpcache_cache* cache;
  std::unique_ptr<httpcache::async_session> session;
  // Per key, what its last get left for the set that follows: the generations a tagged miss
  // read (httpcache_async_set_ex stamps with them) and the refresh lock a stale read took.
  struct read {
    httpcache::tag_set tags;
    std::string refresh_token;
  };
  std::unordered_map<std::string, read> reads;
};

namespace httpcache::capi {

// The C policy as a core policy. The C callback is wrapped, not copied: the policy value is only
// used during the call that received it.
ttl_policy to_core_policy(const httpcache_ttl_policy& policy);

// Checks and views a C key list (pointers + lengths). Throws error(errc::invalid).
std::vector<std::string_view> key_views(const void* const* keys, const size_t* key_lens, size_t nkeys);
// A C tag list as strings, checked as the core checks tags (1..32 of 1..1024 bytes). Throws
// error(errc::invalid).
std::vector<std::string> tag_list(const void* const* tags, const size_t* tag_lens, size_t ntags);

// A C httpcache_call, checked (NULL: no tags, no windows). Throws error(errc::invalid / version).
struct call_args {
  std::vector<std::string> tags;
  stale_windows stale;
};
call_args call_args_of(const httpcache_call* call);

// Views of C headers (name, value), borrowed; a NULL name or value with a size throws
// error(errc::invalid) naming it.
std::vector<std::pair<std::string_view, std::string_view>> header_views(const httpcache_header* headers, size_t n);

inline std::string_view bytes(const void* data, size_t size) {
  return std::string_view(static_cast<const char*>(data), size);
}

}  // namespace httpcache::capi
