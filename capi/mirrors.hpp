// SPDX-License-Identifier: MIT
// Compile-time checks that the core's values equal their public twins in include/httpcache.h.
// The core does not include the C header, so these are the only place both are visible; the C
// layer converts between them with static_cast (status codes, TTL kinds, outcomes, event bits)
// or field by field (options), and a drift on either side fails the build here, one value each.
// Included by capi/cache.cpp.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "../core/backend.hpp"
#include "../core/cache.hpp"
#include "../core/error.hpp"
#include "../core/key.hpp"
#include "../core/options.hpp"
#include "../core/ttl.hpp"
#include "httpcache.h"

namespace httpcache::capi::mirrors {

template <typename E>
constexpr int value(E e) noexcept {
  return static_cast<int>(e);
}

// Status codes: errc -> httpcache_error_code is the identity (guard() casts). 0 is success in the
// core's async completions too.
static_assert(HTTPCACHE_OK == 0);
static_assert(value(errc::generic) == HTTPCACHE_ERROR);
static_assert(value(errc::not_found) == HTTPCACHE_ENOTFOUND);
static_assert(value(errc::invalid) == HTTPCACHE_EINVALID);
static_assert(value(errc::no_memory) == HTTPCACHE_ENOMEM);
static_assert(value(errc::buffer_too_small) == HTTPCACHE_EBUFS);
static_assert(value(errc::user) == HTTPCACHE_EUSER);
static_assert(value(errc::backend) == HTTPCACHE_EBACKEND);
static_assert(value(errc::timeout) == HTTPCACHE_ETIMEOUT);
static_assert(value(errc::version) == HTTPCACHE_EVERSION);
static_assert(value(errc::canceled) == HTTPCACHE_ECANCELED);

// TTL kinds: httpcache_ttl_policy.kind -> ttl_kind (to_core_policy casts).
static_assert(value(ttl_kind::seconds) == HTTPCACHE_TTL_SECONDS);
static_assert(value(ttl_kind::end_of_day) == HTTPCACHE_TTL_END_OF_DAY);
static_assert(value(ttl_kind::end_of_week) == HTTPCACHE_TTL_END_OF_WEEK);
static_assert(value(ttl_kind::callback) == HTTPCACHE_TTL_CALLBACK);

// Outcomes: outcome -> httpcache_outcome (httpcache_cache_get_or_compute casts).
static_assert(value(outcome::hit) == HTTPCACHE_OUTCOME_HIT);
static_assert(value(outcome::stored) == HTTPCACHE_OUTCOME_STORED);
static_assert(value(outcome::uncached) == HTTPCACHE_OUTCOME_UNCACHED);
static_assert(value(outcome::coalesced) == HTTPCACHE_OUTCOME_COALESCED);

// Event bits: passed through unchanged by the watch callback and httpcache_async_process().
static_assert(value(event_read) == HTTPCACHE_EV_READ);
static_assert(value(event_write) == HTTPCACHE_EV_WRITE);

// Limits checked by the core and documented by the header.
static_assert(max_namespace_bytes == HTTPCACHE_MAX_NAMESPACE_BYTES);
static_assert(max_key_bytes == HTTPCACHE_MAX_KEY_BYTES);
static_assert(max_ttl_seconds == HTTPCACHE_MAX_TTL_SECONDS);

// Options: every field of httpcache_options after `version` is in HTTPCACHE_OPTION_LIST, with the
// same type, in the same order, and there is no other field.
#define HTTPCACHE_MIRROR_OPTION_TYPE(name, type)                                \
  static_assert(std::is_same_v<decltype(httpcache_options::name), type>,        \
                "httpcache_options::" #name " and HTTPCACHE_OPTION_LIST disagree on its type");
HTTPCACHE_OPTION_LIST(HTTPCACHE_MIRROR_OPTION_TYPE)
#undef HTTPCACHE_MIRROR_OPTION_TYPE

#define HTTPCACHE_MIRROR_OPTION_OFFSET(name, type) offsetof(httpcache_options, name),
inline constexpr std::size_t option_offsets[] = {HTTPCACHE_OPTION_LIST(HTTPCACHE_MIRROR_OPTION_OFFSET)};
#undef HTTPCACHE_MIRROR_OPTION_OFFSET

constexpr bool strictly_increasing(const std::size_t* v, std::size_t n) noexcept {
  for (std::size_t i = 1; i < n; ++i)
    if (v[i] <= v[i - 1]) return false;
  return true;
}
static_assert(option_offsets[0] > offsetof(httpcache_options, version));
static_assert(strictly_increasing(option_offsets, option_count),
              "HTTPCACHE_OPTION_LIST is not in the field order of httpcache_options");

// The number of fields of an aggregate: it is brace-initializable from N values and not N + 1.
struct any_value {
  template <typename T>
  constexpr operator T() const noexcept;  // unevaluated only
};
template <typename T, typename Seq, typename = void>
struct brace_initializable : std::false_type {};
template <typename T, std::size_t... I>
struct brace_initializable<T, std::index_sequence<I...>, std::void_t<decltype(T{((void)I, any_value{})...})>>
    : std::true_type {};
template <typename T, std::size_t N>
inline constexpr bool has_fields = brace_initializable<T, std::make_index_sequence<N>>::value &&
                                   !brace_initializable<T, std::make_index_sequence<N + 1>>::value;

// Version 2 appended the seven TLS fields (ssl_ca_certs .. ssl_check_hostname), which are not
// numeric options and so not in the list: copied one by one in capi/cache.cpp. Version 3's
// near_* options follow them and are in the list.
inline constexpr std::size_t tls_option_count = 7;
static_assert(has_fields<httpcache_options, 1 + option_count + tls_option_count>,
              "httpcache_options has a field that HTTPCACHE_OPTION_LIST (core/options.hpp) lacks, or the other way round");
static_assert(option_offsets[find_option("lock_ttl_ms") - option_table] < offsetof(httpcache_options, ssl_ca_certs),
              "version 1's numeric options come before the TLS fields");
static_assert(option_offsets[find_option("near_cache") - option_table] > offsetof(httpcache_options, ssl_check_hostname),
              "version 3's options come after the TLS fields");

}  // namespace httpcache::capi::mirrors
