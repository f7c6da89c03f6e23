// SPDX-License-Identifier: MIT
// Serving stale entries (RFC 5861's stale-while-revalidate and stale-if-error), in the core so
// that a C program and a Python service sharing entries follow the same windows
// (docs/design.md "Stale entries").
//
// An entry stored with a window keeps living in the store past its freshness lifetime, for the
// longer of the two windows, and carries in an envelope when it stops being fresh and its
// windows (the writer's: a reader needs no configuration to honour them). While it is stale but
// within stale-while-revalidate, callers are served it and exactly one caller, across processes,
// recomputes (it holds the key's refresh lock); its store replaces the stale entry only while
// the entry is still the one it saw, so an invalidation meanwhile wins. Within stale-if-error, a
// computation that fails is answered with the stale entry. An invalidated entry is never served
// stale: an invalidation deletes it, and a tag invalidation makes it a miss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace httpcache {

struct stale_windows {
  std::int64_t while_revalidate_ms = 0;
  std::int64_t if_error_ms = 0;
  bool any() const noexcept { return while_revalidate_ms > 0 || if_error_ms > 0; }
  std::int64_t longest() const noexcept { return while_revalidate_ms > if_error_ms ? while_revalidate_ms : if_error_ms; }
};

// The most a window may be: a year (the same bound as a TTL).
inline constexpr std::int64_t max_stale_window_ms = 366LL * 24 * 3600 * 1000;
// Throws error(errc::invalid) for a negative or over-long window.
void validate_stale_windows(const stale_windows& w);

// An entry with windows starts with these bytes; the setters refuse values that do.
inline constexpr std::string_view fresh_prefix{"\0httpcache-fresh\0", 17};
inline bool is_fresh_wrapped(std::string_view value) noexcept {
  return value.size() >= fresh_prefix.size() && value.substr(0, fresh_prefix.size()) == fresh_prefix;
}

// fresh_prefix, then "<fresh until, Unix ms> <stale-while-revalidate ms> <stale-if-error ms>\n",
// then the value.
std::string wrap_fresh(std::int64_t fresh_until_ms, const stale_windows& w, std::string_view value);

struct freshness {
  std::int64_t fresh_until_ms = 0;
  stale_windows windows;
};
// Parses an envelope (value must start with fresh_prefix): false when malformed.
bool unwrap_fresh(std::string_view value, freshness& f, std::string_view& payload);

}  // namespace httpcache
