// SPDX-License-Identifier: MIT
// One Redis server (redis:// or unix://): the blocking calls over a connection pool, and
// non-blocking sessions from session.cpp. It only wires the two together.
#include "backend.hpp"

#include "pool.hpp"
#include "session.hpp"

namespace httpcache {

namespace {

using detail::command;
using detail::reply_ptr;

detail::endpoint endpoint_of(const backend_url& url) {
  detail::endpoint e;
  e.host = url.host;
  e.port = url.port;
  e.socket_path = url.socket_path;
  return e;
}

class redis_backend final : public backend {
 public:
  redis_backend(backend_url url, backend_options options)
      : url_(std::move(url)), options_(options), pool_(endpoint_of(url_), url_, options_) {}

  lookup_result get(std::string_view key) override {
    command get = detail::get_command(key), pttl = detail::pttl_command(key);
    auto replies = pool_.exchange({&get, &pttl});  // pipelined: one round trip
    return detail::parse_lookup(replies[0].get(), replies[1].get());
  }

  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override {
    std::string ttl_text;
    command set = detail::set_command(key, value, ttl_ms, ttl_text);
    detail::throw_if_error(pool_.exchange({&set})[0].get());
  }

  std::size_t del(const std::vector<std::string_view>& keys) override {
    if (keys.empty()) return 0;
    command del = detail::del_command(keys);  // one command for all keys
    auto replies = pool_.exchange({&del});
    detail::throw_if_error(replies[0].get());
    return static_cast<std::size_t>(replies[0]->type == REDIS_REPLY_INTEGER ? replies[0]->integer : 0);
  }

  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override {
    std::string ttl_text = std::to_string(ttl_ms);
    command lock = detail::lock_command(lock_key, token, ttl_text);
    auto replies = pool_.exchange({&lock});
    detail::throw_if_error(replies[0].get());
    return replies[0]->type == REDIS_REPLY_STATUS;  // OK when taken, NIL when someone else holds it
  }

  void unlock(std::string_view lock_key, std::string_view token) override {
    command unlock = detail::unlock_command(lock_key, token);
    detail::throw_if_error(pool_.exchange({&unlock})[0].get());
  }

  lease_result lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) override {
    std::string ttl_text = std::to_string(lease_ms);
    command set_nx = detail::lock_command(key, placeholder, ttl_text), get = detail::get_command(key),
            pttl = detail::pttl_command(key);
    auto replies = pool_.exchange({&set_nx, &get, &pttl});  // pipelined: one round trip
    lease_result r = detail::lease_from(replies[0].get(), replies[1].get(), replies[2].get());
    if (r.wrong_type) {  // a value of another type, as a plain SET would have overwritten it
      command set = detail::set_command(key, placeholder, lease_ms, ttl_text);
      detail::throw_if_error(pool_.exchange({&set})[0].get());
      r = lease_result{true, {}, false};
    }
    return r;
  }

  bool store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                    std::int64_t ttl_ms) override {
    std::string ttl_text = std::to_string(ttl_ms);
    command store = detail::store_leased_command(key, placeholder, value, ttl_text);
    auto replies = pool_.exchange({&store});
    detail::throw_if_error(replies[0].get());
    return replies[0]->type == REDIS_REPLY_INTEGER && replies[0]->integer == 1;
  }

  std::unique_ptr<async_session> open_async(watch_fn watch) override {
    // Without a watch callback no descriptor is ever watched: every request would time out.
    if (!watch) throw error(errc::invalid, "a Redis handle's non-blocking context needs a watch callback");
    return make_redis_session(url_, options_, std::move(watch));
  }

 private:
  const backend_url url_;
  const backend_options options_;
  detail::redis_pool pool_;
};

}  // namespace

std::unique_ptr<backend> make_redis_backend(const backend_url& url, const backend_options& options) {
  return std::make_unique<redis_backend>(url, options);
}

}  // namespace httpcache
