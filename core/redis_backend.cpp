// SPDX-License-Identifier: MIT
// Blocking Redis access: a pool of hiredis connections, so one handle serves many threads at once
// (each call borrows a connection for its round trip; no lock is held during I/O).
#include "redis_backend.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <cerrno>
#include <mutex>

#include "redis_async.hpp"
#include "redis_commands.hpp"

namespace httpcache {

namespace {

struct context_deleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

timeval to_timeval(std::uint32_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

// hiredis reports a socket timeout as an I/O error with EAGAIN in errno.
[[noreturn]] void throw_context_error(const redisContext* c, const std::string& where) {
  bool timed_out = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS);
  throw backend_error(timed_out ? errc::timeout : errc::backend,
                      fmt::format("{}: {}", where, timed_out ? "timed out" : c->errstr));
}

class redis_backend final : public backend {
 public:
  redis_backend(backend_url url, backend_options options) : url_(std::move(url)), options_(options) {}

  lookup_result get(std::string_view key) override {
    return with_connection([&](redisContext* c) {
      const char* get_argv[] = {"GET", key.data()};
      const std::size_t get_lens[] = {3, key.size()};
      const char* pttl_argv[] = {"PTTL", key.data()};
      const std::size_t pttl_lens[] = {4, key.size()};
      // GET and PTTL pipelined: one write, one round trip.
      redisAppendCommandArgv(c, 2, get_argv, get_lens);
      redisAppendCommandArgv(c, 2, pttl_argv, pttl_lens);
      // Both replies are read before either is judged, so the connection never keeps a stray one.
      reply_ptr value = read_raw(c), pttl = read_raw(c);
      lookup_result r;
      if (pttl->type == REDIS_REPLY_ERROR) throw_reply_error(pttl.get());
      if (value->type == REDIS_REPLY_STRING) {
        r.found = true;
        r.value.assign(value->str, value->len);
        r.ttl_ms = detail::remaining_ttl_ms(pttl.get());
      }
      // NIL is a miss, and so is an error (WRONGTYPE: a list or hash someone else wrote there).
      return r;
    });
  }

  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override {
    with_connection([&](redisContext* c) {
      std::string ttl_text;
      auto cmd = detail::set_command(key, value, ttl_ms, ttl_text);
      run(c, cmd);
      return 0;
    });
  }

  std::size_t del(const std::vector<std::string_view>& keys) override {
    if (keys.empty()) return 0;
    return with_connection([&](redisContext* c) {
      auto cmd = detail::del_command(keys);
      reply_ptr r = run(c, cmd);
      return static_cast<std::size_t>(r->type == REDIS_REPLY_INTEGER ? r->integer : 0);
    });
  }

  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override {
    return with_connection([&](redisContext* c) {
      std::string ttl_text = std::to_string(ttl_ms);
      detail::command cmd;
      for (std::string_view part : {std::string_view("SET"), lock_key, token, std::string_view("NX"),
                                    std::string_view("PX"), std::string_view(ttl_text)})
        cmd.add(part);
      reply_ptr r = run(c, cmd);
      return r->type == REDIS_REPLY_STATUS;  // OK when taken, NIL when someone else holds it
    });
  }

  void unlock(std::string_view lock_key, std::string_view token) override {
    // Delete only our own lock: after our TTL ran out another process may hold it now.
    static constexpr std::string_view release_script =
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    with_connection([&](redisContext* c) {
      detail::command cmd;
      for (std::string_view part : {std::string_view("EVAL"), release_script, std::string_view("1"), lock_key, token})
        cmd.add(part);
      run(c, cmd);
      return 0;
    });
  }

  std::unique_ptr<async_session> open_async(watch_fn watch) override {
    return make_redis_session(url_, options_, std::move(watch));
  }

 private:
  static reply_ptr read_raw(redisContext* c) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || !raw) throw_context_error(c, "reading the reply");
    return reply_ptr(static_cast<redisReply*>(raw));
  }

  [[noreturn]] static void throw_reply_error(const redisReply* r) {
    throw backend_error(errc::backend, fmt::format("Redis replied: {}", std::string(r->str, r->len)));
  }

  reply_ptr run(redisContext* c, const detail::command& cmd) {
    void* raw = redisCommandArgv(c, cmd.argc(), cmd.argv_data(), cmd.lens.data());
    if (!raw) throw_context_error(c, "sending the command");
    reply_ptr r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR) throw_reply_error(r.get());
    return r;
  }

  context_ptr connect() {
    const timeval connect_tv = to_timeval(options_.connect_timeout_ms);
    context_ptr c(url_.scheme == url_scheme::unix_socket
                      ? redisConnectUnixWithTimeout(url_.socket_path.c_str(), connect_tv)
                      : redisConnectWithTimeout(url_.host.c_str(), url_.port, connect_tv));
    if (!c) throw backend_error(errc::no_memory, "out of memory allocating a Redis connection");
    if (c->err) throw_context_error(c.get(), fmt::format("connecting to {}", url_.redacted()));
    if (redisSetTimeout(c.get(), to_timeval(options_.command_timeout_ms)) != REDIS_OK)
      throw_context_error(c.get(), "setting the command timeout");
    std::string db_text;
    for (const auto& cmd : detail::connection_setup(url_, db_text)) {
      try {
        run(c.get(), cmd);
      } catch (const backend_error& e) {
        // AUTH's error text names no secret, but say which step failed.
        throw backend_error(e.code(), fmt::format("{} on {}: {}", cmd.argv[0], url_.redacted(), e.what()));
      }
    }
    return c;
  }

  // Runs op on a pooled connection. A connection that fails is dropped, never reused; a pooled one
  // that fails with an I/O error (the server restarted since it was used) is retried once on a
  // new connection, which is how the handle reconnects by itself. Every command we send is
  // idempotent, so a retry cannot double an effect.
  template <typename Op>
  auto with_connection(Op&& op) -> decltype(op(static_cast<redisContext*>(nullptr))) {
    for (int attempt = 0;; ++attempt) {
      context_ptr c = take_idle();
      const bool reused = c != nullptr;
      if (!c) c = connect();
      try {
        auto result = op(c.get());
        give_back(std::move(c));
        return result;
      } catch (const backend_error& e) {
        bool connection_broken = c->err != 0;
        if (!connection_broken) {
          give_back(std::move(c));  // an error reply leaves the connection usable
          throw;
        }
        if (!(reused && attempt == 0 && e.code() == errc::backend)) throw;
      }
    }
  }

  context_ptr take_idle() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.empty()) return nullptr;
    context_ptr c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }

  void give_back(context_ptr c) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < options_.pool_size) idle_.push_back(std::move(c));
  }

  const backend_url url_;
  const backend_options options_;
  std::mutex mutex_;
  std::vector<context_ptr> idle_;
};

}  // namespace

std::unique_ptr<backend> make_redis_backend(const backend_url& url, const backend_options& options) {
  return std::make_unique<redis_backend>(url, options);
}

}  // namespace httpcache
