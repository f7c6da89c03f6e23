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

// Up to this many reads are remembered per context; beyond, all are forgotten (their stores are
// then refused, their refresh locks left to expire: both safe).
constexpr std::size_t max_reads = 65536;

// Starts a get, remembering what the next set of the key needs: the generations a tagged miss
// read, the refresh lock a stale read took.
void start_get(httpcache_async* ctx, std::string key, std::vector<std::string> tags, httpcache_async_get_cb done,
               void* payload) {
  const bool tagged = !tags.empty();
  ctx->cache->impl->async_get(
      *ctx->session, key, tags,
      [ctx, key, tagged, done, payload](int status, std::string_view value, std::int64_t ttl_ms,
                                        const core::tag_set& read, const std::string& refresh_token) {
        if ((status == HTTPCACHE_ENOTFOUND && tagged) || !refresh_token.empty()) {
          if (ctx->reads.size() >= max_reads) ctx->reads.clear();
          ctx->reads[key] = httpcache_async::read{read, refresh_token};
        }
        if (status != HTTPCACHE_ENOTFOUND || !tagged) return done(described(status), value.data(), value.size(), ttl_ms, payload);
        const std::string read_as = read.signature();  // equal bytes: the same generations
        done(status, read_as.data(), read_as.size(), ttl_ms, payload);
      });
}

// What a set of key stores with: the generations its get read (when it names tags: the same
// tags, else nothing is stored) and the refresh lock to release once it is done.
httpcache_async::read take_read(httpcache_async* ctx, const std::string& key, const std::vector<std::string>& tags) {
  httpcache_async::read r;
  if (auto it = ctx->reads.find(key); it != ctx->reads.end()) {
    r = std::move(it->second);
    ctx->reads.erase(it);
  }
  const core::tag_set named(tags);
  if (r.tags.tags() != named.tags()) r.tags = named;  // no generation known: complete() is false
  return r;
}

}  // namespace

extern "C" {

int httpcache_async_open(httpcache_async** out, httpcache_cache* cache, httpcache_async_watch_cb watch,
                         void* watch_payload) {
  if (reject_if(!out || !cache, "out or cache is NULL")) return HTTPCACHE_EINVALID;
  *out = nullptr;
  return guard([&] {
    core::watch_fn w;
    if (watch) w = [watch, watch_payload](core::descriptor fd, unsigned events) { watch(fd, events, watch_payload); };
    auto ctx = std::make_unique<httpcache_async>();
    ctx->cache = cache;
    ctx->session = cache->impl->open_async(std::move(w));
    *out = ctx.release();
  });
}

void httpcache_async_free(httpcache_async* ctx) { delete ctx; }

int httpcache_async_get(httpcache_async* ctx, const void* key, size_t key_len, httpcache_async_get_cb done,
                        void* payload) {
  return httpcache_async_get_ex(ctx, key, key_len, nullptr, done, payload);
}

int httpcache_async_get_ex(httpcache_async* ctx, const void* key, size_t key_len, const httpcache_call* call,
                           httpcache_async_get_cb done, void* payload) {
  if (reject_if(!ctx || !done, "ctx or done is NULL") || reject_if(!key, "key is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] { start_get(ctx, std::string(bytes(key, key_len)), call_args_of(call).tags, done, payload); });
}

int httpcache_async_set_ex(httpcache_async* ctx, const void* key, size_t key_len, const void* value, size_t value_len,
                           const httpcache_ttl_policy* policy, const httpcache_call* call, httpcache_async_done_cb done,
                           void* payload) {
  if (reject_if(!ctx || !done || !policy, "ctx, policy or done is NULL") || reject_if(!key, "key is NULL") ||
      reject_if(!value && value_len, "value is NULL but value_len is not 0"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const call_args args = call_args_of(call);
    std::string k(bytes(key, key_len));
    auto read = std::make_shared<httpcache_async::read>(take_read(ctx, k, args.tags));
    ctx->cache->impl->async_set(
        *ctx->session, k, value_len ? bytes(value, value_len) : std::string_view(), to_core_policy(*policy),
        [ctx, k, read, done, payload](int status, std::int64_t n) {
          if (status != HTTPCACHE_ECANCELED)  // canceled: the session is closing; the lock expires
            ctx->cache->impl->async_end_refresh(*ctx->session, k, std::move(read->refresh_token));
          done(described(status), n, payload);
        },
        &read->tags, args.stale);
  });
}

int httpcache_async_set(httpcache_async* ctx, const void* key, size_t key_len, const void* value, size_t value_len,
                        const httpcache_ttl_policy* policy, httpcache_async_done_cb done, void* payload) {
  return httpcache_async_set_ex(ctx, key, key_len, value, value_len, policy, nullptr, done, payload);
}

int httpcache_async_invalidate_tags(httpcache_async* ctx, const void* const* tags, const size_t* tag_lens,
                                    size_t ntags, httpcache_async_done_cb done, void* payload) {
  if (reject_if(!ctx || !done, "ctx or done is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    std::vector<std::string> list = tag_list(tags, tag_lens, ntags);
    ctx->cache->impl->async_invalidate_tags(*ctx->session, std::vector<std::string_view>(list.begin(), list.end()),
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
    std::string k(bytes(key, key_len));
    if (auto it = ctx->reads.find(k); it != ctx->reads.end()) {
      ctx->cache->impl->async_end_refresh(*ctx->session, k, std::move(it->second.refresh_token));
      ctx->reads.erase(it);
    }
    ctx->cache->impl->async_release(*ctx->session, k,
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
