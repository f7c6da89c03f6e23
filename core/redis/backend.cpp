// SPDX-License-Identifier: MIT
// One Redis server (redis://, rediss:// or unix://), or the master its sentinels name
// (redis+sentinel://): the blocking calls over a connection pool, and non-blocking sessions from
// session.cpp. With Sentinel, the pool follows the master the locator names, and every failure
// of the master (an outage, a READONLY reply) asks the locator to look again.
#include "backend.hpp"

#include <mutex>

#include "../fork.hpp"
#include "pool.hpp"
#include "sentinel.hpp"
#include "session.hpp"
#include "tls.hpp"
#include "tracking.hpp"
#include "../tags.hpp"

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

bool is_readonly(const detail::reply_ptr& r) {
  return r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).substr(0, 8) == "READONLY";
}

class redis_backend final : public backend, private detail::fork_participant {
 public:
  redis_backend(backend_url url, backend_options options)
      : url_(std::move(url)),
        options_(options),
        tls_(url_.tls.enabled ? std::make_shared<const detail::tls_client>(url_.tls) : nullptr),
        locator_(url_.scheme == url_scheme::redis_sentinel
                     ? std::make_unique<detail::sentinel_locator>(url_, options_, tls_)
                     : nullptr),
        pool_(locator_ ? nullptr : std::make_shared<detail::redis_pool>(endpoint_of(url_), url_, options_, tls_.get())) {}

  lookup_result get(std::string_view key) override {
    command get = detail::get_command(key), pttl = detail::pttl_command(key);
    auto replies = exchange({&get, &pttl});  // pipelined: one round trip
    return detail::parse_lookup(replies[0].get(), replies[1].get());
  }

  // The entry's GET and PTTL and one MGET of the tags, pipelined: one round trip. A tag without a
  // generation (new, or its key evicted) then gets one (SET NX, GET): one more, only then.
  lookup_result get_stamped(std::string_view key, const std::vector<std::string_view>& tag_keys,
                            const std::vector<std::string>& candidates,
                            std::vector<std::string>& generations) override {
    std::vector<command> cmds;
    if (!key.empty()) {
      cmds.push_back(detail::get_command(key));
      cmds.push_back(detail::pttl_command(key));
    }
    if (!tag_keys.empty()) cmds.push_back(detail::mget_command(tag_keys));
    auto replies = exchange(pointers(cmds));
    lookup_result r;
    if (!key.empty()) r = detail::parse_lookup(replies[0].get(), replies[1].get());
    generations.assign(tag_keys.size(), std::string());
    if (tag_keys.empty()) return r;
    const redisReply* m = replies.back().get();
    detail::throw_if_error(m);
    std::vector<std::size_t> absent;
    for (std::size_t i = 0; i < tag_keys.size(); ++i) {
      const redisReply* g = m->type == REDIS_REPLY_ARRAY && i < m->elements ? m->element[i] : nullptr;
      if (g && g->type == REDIS_REPLY_STRING) generations[i].assign(g->str, g->len);
      else absent.push_back(i);
    }
    if (absent.empty()) return r;
    const std::string ttl_text = std::to_string(tag_ttl_ms);
    cmds.clear();
    for (std::size_t i : absent) {
      cmds.push_back(detail::lock_command(tag_keys[i], candidates[i], ttl_text));
      cmds.push_back(detail::get_command(tag_keys[i]));
    }
    replies = exchange(pointers(cmds));
    for (std::size_t n = 0; n < absent.size(); ++n) {
      detail::throw_if_error(replies[2 * n].get());  // SET NX: OK or NIL, unless the server refused
      const redisReply* g = replies[2 * n + 1].get();
      if (g->type == REDIS_REPLY_STRING) generations[absent[n]].assign(g->str, g->len);
    }
    return r;
  }

  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override {
    std::string ttl_text;
    command set = detail::set_command(key, value, ttl_ms, ttl_text);
    detail::throw_if_error(exchange({&set})[0].get());
  }

  std::size_t del(const std::vector<std::string_view>& keys) override {
    if (keys.empty()) return 0;
    command del = detail::del_command(keys);  // one command for all keys
    auto replies = exchange({&del});
    detail::throw_if_error(replies[0].get());
    return static_cast<std::size_t>(replies[0]->type == REDIS_REPLY_INTEGER ? replies[0]->integer : 0);
  }

  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override {
    std::string ttl_text = std::to_string(ttl_ms);
    command lock = detail::lock_command(lock_key, token, ttl_text);
    auto replies = exchange({&lock});
    detail::throw_if_error(replies[0].get());
    return replies[0]->type == REDIS_REPLY_STATUS;  // OK when taken, NIL when someone else holds it
  }

  void unlock(std::string_view lock_key, std::string_view token) override {
    command unlock = detail::unlock_command(lock_key, token);
    detail::throw_if_error(exchange({&unlock})[0].get());
  }

  lease_result lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) override {
    std::string ttl_text = std::to_string(lease_ms);
    command set_nx = detail::lock_command(key, placeholder, ttl_text), get = detail::get_command(key),
            pttl = detail::pttl_command(key);
    auto replies = exchange({&set_nx, &get, &pttl});  // pipelined: one round trip
    lease_result r = detail::lease_from(replies[0].get(), replies[1].get(), replies[2].get());
    if (r.wrong_type) {  // a value of another type, as a plain SET would have overwritten it
      command set = detail::set_command(key, placeholder, lease_ms, ttl_text);
      detail::throw_if_error(exchange({&set})[0].get());
      r = lease_result{true, {}, false};
    }
    return r;
  }

  bool store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                    std::int64_t ttl_ms) override {
    std::string ttl_text = std::to_string(ttl_ms);
    command store = detail::store_leased_command(key, placeholder, value, ttl_text);
    auto replies = exchange({&store});
    detail::throw_if_error(replies[0].get());
    return replies[0]->type == REDIS_REPLY_INTEGER && replies[0]->integer == 1;
  }

  // One link to the server, or to the master Sentinel names now (a failover changes the
  // locator's version: the near tier stops at once, and the feed links to the new master).
  std::unique_ptr<invalidation_feed> watch(const std::vector<std::string>& prefixes,
                                           invalidation_sink& sink) override {
    detail::targets_fn targets;
    const std::atomic<std::uint64_t>* topology = nullptr;
    if (locator_) {
      topology = &locator_->version();
      targets = [l = locator_.get()]() -> std::optional<detail::watch_targets> {
        const std::uint64_t version = l->version().load();
        auto m = l->known_master();
        if (!m) return std::nullopt;
        return detail::watch_targets{version, {*m}};
      };
    } else {
      targets = [where = endpoint_of(url_)] { return std::optional<detail::watch_targets>({0, {where}}); };
    }
    return detail::make_tracking_feed(url_, options_, tls_.get(), std::move(targets), topology, prefixes, sink);
  }

  std::unique_ptr<async_session> open_async(watch_fn watch) override {
    // Without a watch callback no descriptor is ever watched: every request would time out.
    if (!watch) throw error(errc::invalid, "a Redis handle's non-blocking context needs a watch callback");
    session_target target;
    target.tls = tls_;
    if (locator_) {
      target.locate = [l = locator_.get()] { return l->known_master(); };
      target.lost = [l = locator_.get()] { l->lost(); };
    }
    return make_redis_session(url_, options_, std::move(watch), std::move(target));
  }

 private:
  static std::vector<const command*> pointers(const std::vector<command>& cmds) {
    std::vector<const command*> ptrs;
    for (const auto& c : cmds) ptrs.push_back(&c);
    return ptrs;
  }

  std::vector<reply_ptr> exchange(const std::vector<const command*>& commands) {
    if (!locator_) return pool_->exchange(commands);
    std::shared_ptr<detail::redis_pool> pool = master_pool();
    try {
      auto replies = pool->exchange(commands);
      for (const auto& r : replies)
        if (is_readonly(r)) locator_->lost();  // a replica now: the failover has happened
      return replies;
    } catch (const backend_error& e) {
      if (e.outage()) locator_->lost();
      throw;
    }
  }

  // The pool of the master the locator names now, made anew when it names another one. Made
  // outside the lock: a pool registers for fork, and the fork handler takes our lock.
  std::shared_ptr<detail::redis_pool> master_pool() {
    const detail::endpoint m = locator_->master();
    {
      std::lock_guard<std::mutex> lock(pool_mutex_);
      if (pool_ && pool_->where().name() == m.name()) return pool_;
    }
    auto made = std::make_shared<detail::redis_pool>(m, url_, options_, tls_.get());
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!pool_ || pool_->where().name() != m.name()) pool_ = std::move(made);
    return pool_;
  }

  void before_fork() noexcept override { pool_mutex_.lock(); }
  void after_fork_parent() noexcept override { pool_mutex_.unlock(); }
  void after_fork_child() noexcept override { pool_mutex_.unlock(); }

  const backend_url url_;
  const backend_options options_;
  const std::shared_ptr<const detail::tls_client> tls_;  // null: plain
  const std::unique_ptr<detail::sentinel_locator> locator_;  // redis+sentinel:// only
  std::mutex pool_mutex_;  // guards pool_ when a locator may replace it
  std::shared_ptr<detail::redis_pool> pool_;
  detail::fork_registration registered_{*this};  // last: registered once the rest exists
};

}  // namespace

std::unique_ptr<backend> make_redis_backend(const backend_url& url, const backend_options& options) {
  return std::make_unique<redis_backend>(url, options);
}

}  // namespace httpcache
