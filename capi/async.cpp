// SPDX-License-Identifier: MIT
// The non-blocking calls of the C ABI: C callbacks around the core's async session.
#include "../core/error.hpp"
#include "guard.hpp"
#include "handle.hpp"

using namespace httpcache::capi;
namespace core = httpcache;

namespace {

// Inside a completion callback, httpcache_error_last() says why the request failed (the session
// noted it just before completing).
int described(int status) {
  if (status == HTTPCACHE_EBACKEND || status == HTTPCACHE_ETIMEOUT) set_error(status, core::last_backend_failure().detail);
  return status;
}

// Up to this many tagged misses are remembered per context; beyond, all are forgotten (their
// stores are then refused, which is safe).
constexpr std::size_t max_tagged_misses = 65536;

void remember_miss(httpcache_async& ctx, const std::string& key, const core::tag_set& read) {
  if (ctx.tagged_misses.size() >= max_tagged_misses) ctx.tagged_misses.clear();
  ctx.tagged_misses[key] = read;
}

}  // namespace

extern "C" {

int httpcache_async_open(httpcache_async** out, httpcache_cache* cache, httpcache_async_watch_cb watch,
                         void* watch_payload) {
  if (reject_if(!out || !cache, "out or cache is NULL")) return HTTPCACHE_EINVALID;
  *out = nullptr;
  return guard([&] {
    core::watch_fn w;
    if (watch) w = [watch, watch_payload](int fd, unsigned events) { watch(fd, events, watch_payload); };
    auto ctx = std::make_unique<httpcache_async>();
    ctx->cache = cache;
    ctx->session = cache->impl->open_async(std::move(w));
    *out = ctx.release();
  });
}

void httpcache_async_free(httpcache_async* ctx) { delete ctx; }

int httpcache_async_get(httpcache_async* ctx, const void* key, size_t key_len, httpcache_async_get_cb done,
                        void* payload) {
  if (reject_if(!ctx || !done, "ctx or done is NULL") || reject_if(!key, "key is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    ctx->cache->impl->async_get(*ctx->session, bytes(key, key_len), {},
                                [done, payload](int status, std::string_view value, std::int64_t ttl_ms,
                                                const core::tag_set&) {
                                  done(described(status), value.data(), value.size(), ttl_ms, payload);
                                });
  });
}

int httpcache_async_get_tagged(httpcache_async* ctx, const void* key, size_t key_len, const void* const* tags,
                               const size_t* tag_lens, size_t ntags, httpcache_async_get_cb done, void* payload) {
  if (reject_if(!ctx || !done, "ctx or done is NULL") || reject_if(!key, "key is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    std::string k(bytes(key, key_len));
    ctx->cache->impl->async_get(
        *ctx->session, k, tag_list(tags, tag_lens, ntags),
        [ctx, k, done, payload](int status, std::string_view value, std::int64_t ttl_ms, const core::tag_set& read) {
          if (status != HTTPCACHE_ENOTFOUND) return done(described(status), value.data(), value.size(), ttl_ms, payload);
          remember_miss(*ctx, k, read);
          const std::string read_as = read.signature();  // equal bytes: the same generations
          done(status, read_as.data(), read_as.size(), ttl_ms, payload);
        });
  });
}

int httpcache_async_set_tagged(httpcache_async* ctx, const void* key, size_t key_len, const void* const* tags,
                               const size_t* tag_lens, size_t ntags, const void* value, size_t value_len,
                               const httpcache_ttl_policy* policy, httpcache_async_done_cb done, void* payload) {
  if (reject_if(!ctx || !done || !policy, "ctx, policy or done is NULL") || reject_if(!key, "key is NULL") ||
      reject_if(!value && value_len, "value is NULL but value_len is not 0"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const core::tag_set named(tag_list(tags, tag_lens, ntags));
    std::string k(bytes(key, key_len));
    core::tag_set read;  // empty: no matching miss, so the core stores nothing (the lease goes)
    if (auto it = ctx->tagged_misses.find(k); it != ctx->tagged_misses.end()) {
      if (it->second.tags() == named.tags()) read = std::move(it->second);
      ctx->tagged_misses.erase(it);
    }
    if (read.empty()) read = named;  // no generation known: complete() is false
    ctx->cache->impl->async_set(*ctx->session, k, value_len ? bytes(value, value_len) : std::string_view(),
                                to_core_policy(*policy),
                                [done, payload](int status, std::int64_t n) { done(described(status), n, payload); },
                                &read);
  });
}

int httpcache_async_invalidate_tags(httpcache_async* ctx, const void* const* tags, const size_t* tag_lens,
                                    size_t ntags, httpcache_async_done_cb done, void* payload) {
  if (reject_if(!ctx || !done, "ctx or done is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    std::vector<std::string> list = tag_list(tags, tag_lens, ntags);
    core::tag_set checked(list);
    std::vector<std::string_view> views(list.begin(), list.end());
    ctx->cache->impl->async_invalidate_tags(*ctx->session, views,
                                            [done, payload](int status, std::int64_t n) { done(described(status), n, payload); });
  });
}

int httpcache_async_set(httpcache_async* ctx, const void* key, size_t key_len, const void* value, size_t value_len,
                        const httpcache_ttl_policy* policy, httpcache_async_done_cb done, void* payload) {
  if (reject_if(!ctx || !done || !policy, "ctx, policy or done is NULL") || reject_if(!key, "key is NULL") ||
      reject_if(!value && value_len, "value is NULL but value_len is not 0"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    ctx->cache->impl->async_set(*ctx->session, bytes(key, key_len),
                                value_len ? bytes(value, value_len) : std::string_view(), to_core_policy(*policy),
                                [done, payload](int status, std::int64_t n) { done(described(status), n, payload); });
  });
}

int httpcache_async_invalidate(httpcache_async* ctx, const void* const* keys, const size_t* key_lens, size_t nkeys,
                               httpcache_async_done_cb done, void* payload) {
  if (reject_if(!ctx || !done, "ctx or done is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    ctx->cache->impl->async_invalidate(*ctx->session, key_views(keys, key_lens, nkeys),
                                       [done, payload](int status, std::int64_t n) { done(described(status), n, payload); });
  });
}

int httpcache_async_release(httpcache_async* ctx, const void* key, size_t key_len, httpcache_async_done_cb done,
                            void* payload) {
  if (reject_if(!ctx || !done, "ctx or done is NULL") || reject_if(!key, "key is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    ctx->cache->impl->async_release(*ctx->session, bytes(key, key_len),
                                    [done, payload](int status, std::int64_t n) { done(described(status), n, payload); });
  });
}

int httpcache_async_process(httpcache_async* ctx, uint32_t events) {
  if (reject_if(!ctx, "ctx is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] { ctx->session->process(events); });
}

int64_t httpcache_async_timeout_ms(const httpcache_async* ctx) { return ctx ? ctx->session->timeout_ms() : -1; }

size_t httpcache_async_pending(const httpcache_async* ctx) { return ctx ? ctx->session->pending() : 0; }

}  // extern "C"
