// SPDX-License-Identifier: MIT
#include "cache.hpp"

#include <fmt/format.h>

#include "key.hpp"
#include "memory_backend.hpp"
#include "redis_backend.hpp"
#include "url.hpp"

namespace httpcache {

namespace {

std::unique_ptr<backend> make_backend(const backend_url& url, const cache_options& options) {
  if (url.scheme == url_scheme::memory)
    return std::make_unique<memory_backend>(options.memory_max_entries, options.memory_max_bytes);
  backend_options effective = options;
  if (url.connect_timeout_ms) effective.connect_timeout_ms = url.connect_timeout_ms;
  if (url.command_timeout_ms) effective.command_timeout_ms = url.command_timeout_ms;
  return make_redis_backend(url, effective);
}

std::vector<std::string> full_keys(const cache& c, const std::vector<std::string_view>& keys) {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (auto k : keys) full.push_back(c.full_key(k));  // validates every key before anything is sent
  return full;
}

}  // namespace

cache::cache(std::string_view url, std::string_view ns, std::string_view tz, const cache_options& options)
    : ns_(ns), zone_(time_zone::load(tz)), options_(options) {
  validate_namespace(ns_);
  backend_ = make_backend(parse_url(url), options_);
}

void cache::check_value_size(std::size_t size) const {
  if (size > options_.max_value_bytes)
    throw error(errc::invalid, fmt::format("value is {} bytes, over the max_value_bytes limit of {}", size,
                                           options_.max_value_bytes));
}

lookup_result cache::get(std::string_view key) { return backend_->get(full_key(key)); }

std::int64_t cache::set(std::string_view key, std::string_view value, const ttl_policy& policy) {
  std::string full = full_key(key);
  check_value_size(value.size());
  std::int64_t seconds = ttl(policy, now_unix_ms());
  backend_->set(full, value, seconds * 1000);
  return seconds;
}

std::size_t cache::invalidate(const std::vector<std::string_view>& keys) {
  auto full = full_keys(*this, keys);
  std::vector<std::string_view> views(full.begin(), full.end());
  return backend_->del(views);
}

get_or_compute_result cache::get_or_compute(std::string_view key, const ttl_policy& policy,
                                            const std::function<computed()>& compute) {
  std::string full = full_key(key);
  validate_ttl_policy(policy);
  get_or_compute_result result;
  bool backend_up = true;
  try {
    lookup_result hit = backend_->get(full);
    if (hit.found) {
      result.value = std::move(hit.value);
      result.ttl_ms = hit.ttl_ms;
      result.outcome = outcome::hit;
      return result;
    }
  } catch (const backend_error&) {
    backend_up = false;  // fail open: compute as if uncached, and don't wait on a store either
  }

  computed fresh = compute();
  result.value = std::move(fresh.value);
  result.outcome = outcome::uncached;
  if (!fresh.store || !backend_up || result.value.size() > options_.max_value_bytes) return result;

  std::int64_t seconds = ttl(policy, now_unix_ms());
  try {
    backend_->set(full, result.value, seconds * 1000);
    result.ttl_ms = seconds * 1000;
    result.outcome = outcome::stored;
  } catch (const backend_error&) {
  }
  return result;
}

void cache::async_get(async_session& s, std::string_view key, get_done_fn done) const {
  s.get(full_key(key), std::move(done));
}

void cache::async_set(async_session& s, std::string_view key, std::string_view value, const ttl_policy& policy,
                      count_done_fn done) const {
  std::string full = full_key(key);
  check_value_size(value.size());
  std::int64_t seconds = ttl(policy, now_unix_ms());
  s.set(full, value, seconds * 1000, [seconds, done = std::move(done)](int status, std::int64_t) {
    done(status, status == 0 ? seconds : 0);
  });
}

void cache::async_invalidate(async_session& s, const std::vector<std::string_view>& keys,
                             count_done_fn done) const {
  if (keys.empty()) throw error(errc::invalid, "no keys to invalidate");
  s.del(full_keys(*this, keys), std::move(done));
}

}  // namespace httpcache
