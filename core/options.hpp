// SPDX-License-Identifier: MIT
// The options of a cache, declared once. cache_options holds them with their defaults (the
// backend's part in backend_options); HTTPCACHE_OPTION_LIST names them in the order of the public
// httpcache_options, and option_table gives each one's name, default and maximum. Every layer
// expands the list instead of naming the options again: capi/cache.cpp copies httpcache_options
// into cache_options, the Python binding builds httpcache_options from keywords and exposes the
// table as _httpcache.OPTIONS, and capi/mirrors.hpp checks the C struct against the list.
//
// Adding an option: append its field to httpcache_options (include/httpcache.h, with its default
// in the comment), give it a field and default in cache_options (or backend_options), and append
// one line to HTTPCACHE_OPTION_LIST. Nothing else names it.
//
// Header-only and free of third-party headers: the Python binding reads the table at compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "backend.hpp"

namespace httpcache {

struct cache_options : backend_options {
  std::uint64_t max_value_bytes = 8ull << 20;
  std::uint32_t breaker_failures = 3;      // consecutive failures that open the breaker (0: never)
  std::uint32_t breaker_cooldown_ms = 500;  // how long it stays open before one probe
  std::uint32_t singleflight_wait_ms = 5000;  // longest wait for a concurrent caller's computation
  std::uint32_t lock_ttl_ms = 0;  // cross-process stampede lock on the backend; 0 = off
};

// X(name, type), in the field order of httpcache_options (after `version`; the TLS fields, which
// are not numbers, sit between version 1's options and version 3's, near_cache on). `name` is the field
// of cache_options and of httpcache_options, and the Python keyword; `type` is its type in both.
// In httpcache_options, 0 means "the default": the value cache_options{} holds.
#define HTTPCACHE_OPTION_LIST(X)           \
  X(connect_timeout_ms, std::uint32_t)     \
  X(command_timeout_ms, std::uint32_t)     \
  X(pool_size, std::uint32_t)              \
  X(memory_max_entries, std::uint64_t)     \
  X(memory_max_bytes, std::uint64_t)       \
  X(max_value_bytes, std::uint64_t)        \
  X(breaker_failures, std::uint32_t)       \
  X(breaker_cooldown_ms, std::uint32_t)    \
  X(singleflight_wait_ms, std::uint32_t)   \
  X(lock_ttl_ms, std::uint32_t)            \
  X(near_cache, std::uint32_t)             \
  X(near_max_bytes, std::uint64_t)         \
  X(near_max_age_ms, std::uint32_t)

struct option_info {
  std::string_view name;
  std::uint64_t default_value;  // what 0 means: cache_options' initializer
  std::uint64_t maximum;        // the field's type limit
};

// The largest value an option takes: its type's, but for near_cache, a choice of two (the C
// API's HTTPCACHE_NEAR_CACHE_ON 1 and HTTPCACHE_NEAR_CACHE_OFF 2).
constexpr std::uint64_t option_limit(std::string_view name, std::uint64_t type_max) {
  return name == "near_cache" ? 2 : type_max;
}

#define HTTPCACHE_OPTION_INFO(name, type) \
  option_info{#name, cache_options{}.name, option_limit(#name, std::numeric_limits<type>::max())},
inline constexpr option_info option_table[] = {HTTPCACHE_OPTION_LIST(HTTPCACHE_OPTION_INFO)};
#undef HTTPCACHE_OPTION_INFO

inline constexpr std::size_t option_count = sizeof(option_table) / sizeof(option_table[0]);

#define HTTPCACHE_OPTION_TYPE_CHECK(name, type)                                  \
  static_assert(std::is_same_v<decltype(cache_options::name), type>,             \
                "HTTPCACHE_OPTION_LIST: wrong type for cache_options::" #name);
HTTPCACHE_OPTION_LIST(HTTPCACHE_OPTION_TYPE_CHECK)
#undef HTTPCACHE_OPTION_TYPE_CHECK

// The option named `name`, or nullptr.
constexpr const option_info* find_option(std::string_view name) noexcept {
  for (const option_info& o : option_table)
    if (o.name == name) return &o;
  return nullptr;
}

}  // namespace httpcache
