// SPDX-License-Identifier: MIT
// Lifecycle, keys, TTLs and the blocking calls of the C ABI.
#include <fmt/format.h>

#include <cstdlib>
#include <optional>

#include "../core/error.hpp"
#include "../core/key.hpp"
#include "../core/url.hpp"
#include "guard.hpp"
#include "handle.hpp"
#include "mirrors.hpp"

namespace httpcache::capi {

ttl_policy to_core_policy(const httpcache_ttl_policy& policy) {
  ttl_policy p;
  p.kind = static_cast<ttl_kind>(policy.kind);  // ttl_kind is `enum class : int`: any int is valid
  p.seconds = policy.seconds;
  if (policy.kind == HTTPCACHE_TTL_CALLBACK && policy.callback) {
    auto cb = policy.callback;
    void* payload = policy.payload;
    p.callback = [cb, payload] { return cb(payload); };
  }
  return p;
}

namespace {

// Views of a C list of byte strings (pointers + lengths) of `what` ("key", "tag"), checked.
std::vector<std::string_view> list_views(const void* const* items, const size_t* lens, size_t n, const char* what) {
  if (n == 0) throw error(errc::invalid, fmt::format("no {}s given", what));
  if (!items || !lens) throw error(errc::invalid, fmt::format("{0}s or {0}_lens is NULL", what));
  std::vector<std::string_view> views;
  views.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!items[i]) throw error(errc::invalid, fmt::format("{} {} is NULL", what, i));
    views.push_back(bytes(items[i], lens[i]));
  }
  return views;
}

}  // namespace

std::vector<std::string_view> key_views(const void* const* keys, const size_t* key_lens, size_t nkeys) {
  return list_views(keys, key_lens, nkeys, "key");
}

std::vector<std::string> tag_list(const void* const* tags, const size_t* tag_lens, size_t ntags) {
  const auto views = list_views(tags, tag_lens, ntags, "tag");
  std::vector<std::string> list(views.begin(), views.end());
  tag_set checked(list);  // every tag, and their number, before anything runs
  return list;
}

call_args call_args_of(const httpcache_call* call) {
  call_args a;
  if (!call) return a;
  if (call->version != HTTPCACHE_CALL_VERSION)
    throw error(errc::version, fmt::format("unsupported httpcache_call version {}", call->version));
  if (call->ntags) a.tags = tag_list(call->tags, call->tag_lens, call->ntags);
  a.stale = {call->stale_while_revalidate_ms, call->stale_if_error_ms};
  validate_stale_windows(a.stale);
  return a;
}

}  // namespace httpcache::capi

using namespace httpcache::capi;
namespace core = httpcache;

namespace {

bool bad_key(const void* key) { return reject_if(!key, "key is NULL"); }

// Each field of httpcache_options over the core's default, unless 0 ("the default") or beyond the
// caller's version of the struct. The list and the defaults are the core's (core/options.hpp);
// capi/mirrors.hpp checks the C struct has exactly those fields.
core::cache_options to_core_options(const httpcache_options* opts) {
  core::cache_options o;
  // The deployment's switch (see near_cache in include/httpcache.h): the default, under the options.
  if (const char* on = std::getenv("HTTPCACHE_NEAR_CACHE"); on && std::string_view(on) == "1") o.near_cache = 1;
  if (!opts) return o;
  const size_t size = options_size(opts->version);
  if (size > offsetof(httpcache_options, near_cache) && opts->near_cache > HTTPCACHE_NEAR_CACHE_OFF)
    throw core::error(core::errc::invalid, fmt::format("near_cache {} is neither HTTPCACHE_NEAR_CACHE_ON nor "
                                                       "HTTPCACHE_NEAR_CACHE_OFF", opts->near_cache));
#define HTTPCACHE_COPY_OPTION(name, type) \
  if (offsetof(httpcache_options, name) < size && opts->name) o.name = opts->name;
  HTTPCACHE_OPTION_LIST(HTTPCACHE_COPY_OPTION)
#undef HTTPCACHE_COPY_OPTION
  if (o.near_cache == HTTPCACHE_NEAR_CACHE_OFF) o.near_cache = 0;
  return o;
}

// The TLS fields (version 2 on): defaults under the URL's own query settings.
core::tls_settings to_core_tls(const httpcache_options* opts) {
  core::tls_settings t;
  if (!opts || opts->version < 2) return t;
  auto text = [](const char* s) { return s ? std::string(s) : std::string(); };
  t.ca_certs = text(opts->ssl_ca_certs);
  t.ca_path = text(opts->ssl_ca_path);
  t.certfile = text(opts->ssl_certfile);
  t.keyfile = text(opts->ssl_keyfile);
  t.server_hostname = text(opts->ssl_server_hostname);
  if (opts->ssl_cert_reqs > HTTPCACHE_SSL_CERT_NONE)
    throw core::error(core::errc::invalid, fmt::format("ssl_cert_reqs {} is neither HTTPCACHE_SSL_CERT_REQUIRED nor "
                                                       "HTTPCACHE_SSL_CERT_NONE", opts->ssl_cert_reqs));
  if (opts->ssl_check_hostname > HTTPCACHE_SSL_NO_CHECK_HOSTNAME)
    throw core::error(core::errc::invalid, fmt::format("ssl_check_hostname {} is neither HTTPCACHE_SSL_CHECK_HOSTNAME "
                                                       "nor HTTPCACHE_SSL_NO_CHECK_HOSTNAME", opts->ssl_check_hostname));
  if (opts->ssl_cert_reqs == HTTPCACHE_SSL_CERT_NONE) t.verify_peer = false;
  if (opts->ssl_check_hostname == HTTPCACHE_SSL_NO_CHECK_HOSTNAME) t.check_hostname = false;
  return t;
}

}  // namespace

extern "C" {

int httpcache_ttl_compute(int64_t* out_seconds, const httpcache_ttl_policy* policy, const char* tz,
                          int64_t now_ms) {
  if (reject_if(!out_seconds || !policy, "out_seconds or policy is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    auto zone = core::time_zone::load(tz && *tz ? tz : "UTC");
    *out_seconds = core::ttl_seconds(to_core_policy(*policy), zone, now_ms);
  });
}

const char* httpcache_tzdata_version(void) {
  try {
    return core::tzdata_version().c_str();
  } catch (...) {  // only a failed allocation of the first call's string
    return "";
  }
}

int httpcache_key_format(httpcache_buf* out, const char* tmpl, size_t tmpl_len, const httpcache_slice* args,
                         size_t nargs) {
  if (reject_if(!out || !tmpl, "out or tmpl is NULL") || reject_if(nargs && !args, "args is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    std::vector<std::string_view> views;
    views.reserve(nargs);
    for (size_t i = 0; i < nargs; ++i) {
      if (!args[i].data && args[i].size)
        throw core::error(core::errc::invalid, fmt::format("argument {} is NULL", i));
      views.push_back(args[i].size ? bytes(args[i].data, args[i].size) : std::string_view());
    }
    std::string key = core::format_key(std::string_view(tmpl, tmpl_len), views);
    fill_buf(out, key.data(), key.size());
  });
}

int httpcache_cache_open(httpcache_cache** out, const char* url, const char* namespace_, const char* tz,
                         const httpcache_options* opts) {
  if (reject_if(!out, "out is NULL")) return HTTPCACHE_EINVALID;
  *out = nullptr;
  if (opts && options_size(opts->version) == 0) {
    set_error(HTTPCACHE_EVERSION, fmt::format("unsupported httpcache_options version {}", opts->version));
    return HTTPCACHE_EVERSION;
  }
  return guard([&] {
    auto handle = std::make_unique<httpcache_cache>();
    handle->impl = std::make_unique<core::cache>(url ? url : "", namespace_ ? namespace_ : "httpcache",
                                                 tz ? tz : "UTC", to_core_options(opts), to_core_tls(opts));
    *out = handle.release();
  });
}

void httpcache_cache_free(httpcache_cache* cache) { delete cache; }

const char* httpcache_cache_namespace(const httpcache_cache* cache) {
  return cache ? cache->impl->ns().c_str() : nullptr;
}

const char* httpcache_cache_timezone(const httpcache_cache* cache) {
  return cache ? cache->impl->zone().id().c_str() : nullptr;
}

int httpcache_cache_full_key(httpcache_buf* out, const httpcache_cache* cache, const void* key, size_t key_len) {
  if (reject_if(!out || !cache, "out or cache is NULL") || bad_key(key)) return HTTPCACHE_EINVALID;
  return guard([&] {
    std::string full = cache->impl->full_key(bytes(key, key_len));
    fill_buf(out, full.data(), full.size());
  });
}

int httpcache_cache_ttl(int64_t* out_seconds, const httpcache_cache* cache, const httpcache_ttl_policy* policy,
                        int64_t now_ms) {
  if (reject_if(!out_seconds || !cache || !policy, "out_seconds, cache or policy is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] { *out_seconds = cache->impl->ttl(to_core_policy(*policy), now_ms); });
}

int httpcache_cache_get(httpcache_buf* value, int64_t* ttl_ms, httpcache_cache* cache, const void* key,
                        size_t key_len) {
  if (reject_if(!value || !cache, "value or cache is NULL") || bad_key(key)) return HTTPCACHE_EINVALID;
  return guard([&] {
    core::lookup_result r = cache->impl->get(bytes(key, key_len));
    if (!r.found) throw core::error(core::errc::not_found, "cache miss");
    fill_buf(value, r.value.data(), r.value.size());
    if (ttl_ms) *ttl_ms = r.ttl_ms;
  });
}

int httpcache_cache_peek(httpcache_buf* value, int64_t* ttl_ms, httpcache_cache* cache, const void* key,
                         size_t key_len) {
  return httpcache_cache_peek_version(value, ttl_ms, nullptr, cache, key, key_len, 0);
}

int httpcache_cache_peek_version(httpcache_buf* value, int64_t* ttl_ms, uint64_t* version, httpcache_cache* cache,
                                 const void* key, size_t key_len, uint64_t known_version) {
  if (reject_if(!cache, "cache is NULL") || reject_if(!value && !known_version, "value is NULL") || bad_key(key))
    return HTTPCACHE_EINVALID;
  bool held = false;
  const int rc = guard([&] {
    std::optional<core::lookup_result> r = cache->impl->peek(bytes(key, key_len), known_version, !value);
    if (!r) return;  // the common answer on a near miss: no exception for it
    held = true;
    if (r->unchanged) {  // released as fill_buf would: the caller may pass a filled buf again
      if (value) std::free(value->ptr), *value = httpcache_buf{nullptr, 0};
    } else {
      fill_buf(value, r->value.data(), r->value.size());
    }
    if (ttl_ms) *ttl_ms = r->ttl_ms;
    if (version) *version = r->version;
  });
  if (rc != HTTPCACHE_OK || held) return rc;
  set_error(HTTPCACHE_ENOTFOUND, "not held in this process");
  return HTTPCACHE_ENOTFOUND;
}

int httpcache_cache_set(int64_t* ttl_seconds, httpcache_cache* cache, const void* key, size_t key_len,
                        const void* value, size_t value_len, const httpcache_ttl_policy* policy) {
  if (reject_if(!cache || !policy, "cache or policy is NULL") || bad_key(key) ||
      reject_if(!value && value_len, "value is NULL but value_len is not 0"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    std::int64_t secs = cache->impl->set(bytes(key, key_len), value_len ? bytes(value, value_len) : std::string_view(),
                                         to_core_policy(*policy));
    if (ttl_seconds) *ttl_seconds = secs;
  });
}

int httpcache_cache_invalidate(size_t* deleted, httpcache_cache* cache, const void* const* keys,
                               const size_t* key_lens, size_t nkeys) {
  if (reject_if(!cache, "cache is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    size_t n = cache->impl->invalidate(key_views(keys, key_lens, nkeys));
    if (deleted) *deleted = n;
  });
}

namespace {

// The windows the compute callback running on this thread may set (httpcache_compute_stale).
thread_local std::optional<core::stale_windows>* computing_windows = nullptr;

int get_or_compute(httpcache_buf* value, int64_t* ttl_ms, httpcache_outcome* outcome, httpcache_cache* cache,
                   std::string_view key, const call_args& args, const httpcache_ttl_policy* policy,
                   httpcache_compute_cb compute, void* payload) {
  // A backend failure is not the call's (it fails open), but httpcache_error_last() says why.
  core::last_backend_failure().detail.clear();
  core::get_or_compute_result r;
  int rc = guard([&] {
    auto produce = [&]() -> core::computed {
      httpcache_buf produced = HTTPCACHE_BUF_INIT;
      uint32_t flags = HTTPCACHE_COMPUTE_STORE;
      // The callback's own cache calls (other handles too) must not leave their failures as ours.
      core::backend_failure ours = core::last_backend_failure();
      core::computed c;
      auto* outer = computing_windows;  // a callback may compute another key inside (nested calls)
      computing_windows = &c.stale;
      int rc = compute(&produced, &flags, payload);
      computing_windows = outer;
      core::last_backend_failure() = std::move(ours);
      if (rc == 0) c.value.assign(produced.ptr ? produced.ptr : "", produced.size);
      httpcache_buf_dispose(&produced);
      if (rc != 0) throw callback_failed{rc};
      c.store = (flags & HTTPCACHE_COMPUTE_DONT_STORE) == 0;
      return c;
    };
    r = cache->impl->get_or_compute(key, to_core_policy(*policy), produce, args.tags, args.stale);
    fill_buf(value, r.value.data(), r.value.size());
    if (ttl_ms) *ttl_ms = r.ttl_ms;
    if (outcome) *outcome = static_cast<httpcache_outcome>(r.outcome);
  });
  const std::string& failure = core::last_backend_failure().detail;
  if (rc == HTTPCACHE_OK && r.outcome == core::outcome::uncached && !failure.empty())
    set_error(HTTPCACHE_EBACKEND, failure);
  return rc;
}

}  // namespace

int httpcache_cache_get_or_compute(httpcache_buf* value, int64_t* ttl_ms, httpcache_outcome* outcome,
                                   httpcache_cache* cache, const void* key, size_t key_len,
                                   const httpcache_ttl_policy* policy, httpcache_compute_cb compute,
                                   void* payload) {
  if (reject_if(!value || !cache || !policy || !compute, "value, cache, policy or compute is NULL") ||
      bad_key(key))
    return HTTPCACHE_EINVALID;
  return get_or_compute(value, ttl_ms, outcome, cache, bytes(key, key_len), call_args(), policy, compute, payload);
}

int httpcache_cache_get_or_compute_ex(httpcache_buf* value, int64_t* ttl_ms, httpcache_outcome* outcome,
                                      httpcache_cache* cache, const void* key, size_t key_len,
                                      const httpcache_ttl_policy* policy, const httpcache_call* call,
                                      httpcache_compute_cb compute, void* payload) {
  if (reject_if(!value || !cache || !policy || !compute, "value, cache, policy or compute is NULL") ||
      bad_key(key))
    return HTTPCACHE_EINVALID;
  call_args args;
  int rc = guard([&] { args = call_args_of(call); });  // checked before the callback could run
  if (rc != HTTPCACHE_OK) return rc;
  return get_or_compute(value, ttl_ms, outcome, cache, bytes(key, key_len), args, policy, compute, payload);
}

int httpcache_compute_stale(int64_t stale_while_revalidate_ms, int64_t stale_if_error_ms) {
  core::stale_windows w{stale_while_revalidate_ms, stale_if_error_ms};
  return guard([&] {
    core::validate_stale_windows(w);
    if (!computing_windows) throw core::error(core::errc::invalid, "httpcache_compute_stale is for compute callbacks only");
    *computing_windows = w;
  });
}

int httpcache_cache_invalidate_tags(httpcache_cache* cache, const void* const* tags, const size_t* tag_lens,
                                    size_t ntags) {
  if (reject_if(!cache, "cache is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    std::vector<std::string> list = tag_list(tags, tag_lens, ntags);
    cache->impl->invalidate_tags(std::vector<std::string_view>(list.begin(), list.end()));
  });
}

int httpcache_cache_stats(httpcache_stats* out, const httpcache_cache* cache) {
  if (reject_if(!out || !cache, "out or cache is NULL")) return HTTPCACHE_EINVALID;
  if (out->version != 1 && out->version != HTTPCACHE_STATS_VERSION) {
    set_error(HTTPCACHE_EVERSION, fmt::format("unsupported httpcache_stats version {}", out->version));
    return HTTPCACHE_EVERSION;
  }
  const core::stats& s = cache->impl->counters();
  auto read = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  out->hits = read(s.hits);
  out->misses = read(s.misses);
  out->stores = read(s.stores);
  out->errors = read(s.errors);
  out->breaker_trips = read(s.breaker_trips);
  out->breaker_skips = read(s.breaker_skips);
  out->uncached = read(s.uncached);
  out->oversized = read(s.oversized);
  out->coalesced = read(s.coalesced);
  out->breaker_open = cache->impl->breaker_open() ? 1 : 0;
  if (out->version >= 2) {
    out->near_hits = read(s.near_hits);
    out->near_invalidations = read(s.near_invalidations);
    out->near_flushes = read(s.near_flushes);
  }
  clear_error();
  return HTTPCACHE_OK;
}

}  // extern "C"
