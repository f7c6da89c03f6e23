// SPDX-License-Identifier: MIT
// The one place where C++ exceptions become C status codes. Every extern "C" entry point runs its
// body through guard(), so no exception can cross the ABI.
#pragma once

#include <cstddef>
#include <string>

#include "../core/error.hpp"
#include "httpcache.h"

namespace httpcache::capi {

// Thrown through the core by a C callback's failure, so its code comes back unchanged.
using callback_failed = httpcache::compute_failed;

void set_error(int code, const std::string& message) noexcept;
void clear_error() noexcept;

// Runs body (which returns void); returns HTTPCACHE_OK, or the mapped code with the last error set.
int guard_impl(void (*thunk)(void*), void* body) noexcept;

template <typename Body>
int guard(Body&& body) noexcept {
  return guard_impl([](void* b) { (*static_cast<Body*>(b))(); }, &body);
}

// An argument check: sets EINVALID with the message when `bad`.
inline bool reject_if(bool bad, const char* message) noexcept {
  if (bad) set_error(HTTPCACHE_EINVALID, message);
  return bad;
}

// The size of httpcache_options as version `version` knew it (1: up to lock_ttl_ms; 2: all), or
// 0 for a version this library does not know.
inline size_t options_size(unsigned int version) noexcept {
  if (version == 1) return offsetof(httpcache_options, ssl_ca_certs);
  if (version == 2) return offsetof(httpcache_options, near_cache);
  if (version == HTTPCACHE_OPTIONS_VERSION) return sizeof(httpcache_options);
  return 0;
}

// Copies bytes into a caller-owned httpcache_buf (NUL-terminated). Throws std::bad_alloc.
void fill_buf(httpcache_buf* out, const char* data, size_t size);

}  // namespace httpcache::capi
