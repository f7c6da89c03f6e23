// SPDX-License-Identifier: MIT
// The HTTP storage rules (RFC 9111 sections 3, 4.1, 5.2 and 5.3) of a cache that sits in the
// application and is keyed by it: whether a response may be stored under a key, how long its
// handler allows it to be fresh, and the Cache-Control a stored response is sent with. They live
// here, behind the C ABI, so that every producer of shared entries (the Python package, a C
// program) judges a response the same way.
//
// A response is stored only when every rule lets it:
// - status 2xx except 206 (a partial body must never answer a request without Range);
// - no Set-Cookie (a cookie is one client's);
// - Cache-Control: not no-store, not no-cache (it may not be served without revalidation, and
//   recomputing is our revalidation), not private unless the key is per-user; a max-age=0 /
//   s-maxage=0 (or an Expires already past) is not stored;
// - Vary: none, except Authorization or Cookie under a per-user key, and the request headers the
//   caller keys variants by (`varied`: see variant()). Any other Vary is declined: the key does
//   not hold that header, so one variant would answer every request (section 4.1 lets a cache
//   decline to store); `Vary: *` always is.
// The freshness the handler allows (s-maxage, we being a shared cache, else max-age, else
// Expires) caps the stored TTL and what clients are told.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "response_record.hpp"

namespace httpcache::http {

using header_view = std::pair<std::string_view, std::string_view>;

// One Cache-Control directive: its name lower-cased, its argument unquoted (nullopt: none).
struct directive {
  std::string name;
  std::optional<std::string> arg;
};

// The directives of a Cache-Control value, in order (commas inside quoted strings kept in
// place); nullopt when a quoted string is not closed.
std::optional<std::vector<directive>> parse_cache_control(std::string_view value);

// The raw comma-separated parts of a Cache-Control value, trimmed, empty ones dropped; nullopt
// when a quoted string is not closed.
std::optional<std::vector<std::string_view>> split_directives(std::string_view value);

// Seconds since the epoch of an HTTP-date (IMF-fixdate, RFC 850 or asctime, section 5.6.7 of
// RFC 9110), or nullopt when it is not one.
std::optional<std::int64_t> parse_http_date(std::string_view text);

struct verdict {
  std::string refused;                // why the response may not be stored; empty: it may
  std::optional<std::int64_t> cap;    // the seconds of freshness its handler allows, if it says
};

// The storage verdict for a response (headers in any case) under a per-user key or a shared
// one, `now` seconds since the epoch (for Expires).
verdict judge(int status, const std::vector<header_view>& headers, bool per_user, std::int64_t now,
              const std::vector<std::string_view>& varied = {});

// The part of a key that tells a request's variant apart (RFC 9111 section 4.1): for each header
// in `varied` (names in any case; sorted, lower-cased, duplicates dropped), "." and the
// percent-encoded (as key values are) "v" + its values in the request joined by ", ", or "n"
// when the request has none. Injective: two requests get the same part only when their values
// of every varied header are equal. Throws error(errc::invalid) for an empty or non-token name.
std::string variant(const std::vector<header_view>& request_headers, const std::vector<std::string_view>& varied);

// The stale windows a response's own Cache-Control allows (RFC 5861: stale-while-revalidate=N,
// stale-if-error=N, in seconds); nullopt where it says nothing (or does not parse).
struct stale_directives {
  std::optional<std::int64_t> while_revalidate;
  std::optional<std::int64_t> if_error;
};
stale_directives read_stale(const std::vector<header_view>& headers);

// What a request's own Cache-Control asks of a cache (RFC 9111 section 5.2.1): no-store (its
// response must not be stored), no-cache or max-age=0 (a stored response must be revalidated;
// Pragma: no-cache counts when there is no Cache-Control).
struct request_directives {
  bool no_store = false;
  bool no_cache = false;
};
request_directives read_request(const std::vector<header_view>& headers);

// Whether a GET or HEAD request's preconditions (RFC 9110 section 13.2.2) make a stored response
// a 304 Not Modified: If-None-Match (weak comparison, lists, "*") against the record's ETag, or,
// without it, If-Modified-Since against its Last-Modified (else the time it was stored).
bool not_modified(const response_record& record, const std::vector<header_view>& request);

// The same from a stored response's validators alone: its ETag and Last-Modified values (nullopt:
// none) and the time it was stored (Unix ms; 0: unknown).
bool not_modified(std::optional<std::string_view> etag, std::optional<std::string_view> last_modified,
                  std::int64_t stored_at_ms, const std::vector<header_view>& request);

// The Cache-Control a response with `max_age` seconds left is sent with: the handler's own
// directives kept in order, max-age and s-maxage lowered to what is left (added when it had
// neither), public dropped and private added under a per-user key.
std::string cache_control_for(std::int64_t max_age, bool per_user, std::optional<std::string_view> handler);

}  // namespace httpcache::http
