// SPDX-License-Identifier: MIT
// The non-blocking session on one Redis connection: hiredis's async API driven through a watch_fn
// (no loop library), requests queued in order with deadlines, reconnect on the next request
// after a failure. Cluster node sessions are these too, so every policy here (such as writing a
// lone request at once) holds for a cluster's nodes as well.
//
// A new connection sends AUTH and SELECT first, and requests started meanwhile are held back
// until both succeed: pipelined behind them, they would run even when AUTH is refused (as the
// server's default user) or SELECT is (in database 0), reading and writing another user's or
// database's keys. A refused AUTH or SELECT fails the held requests instead.
#include "session.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <vector>

#include "../clock.hpp"
#include "commands.hpp"
#include "fork.hpp"

namespace httpcache {

namespace {

constexpr int status_of(errc e) { return static_cast<int>(e); }

class redis_session;

// One per hiredis connection (not per session): while a dying connection is torn down a new one
// may already be watched, and each must report its own descriptor.
struct connection_watch {
  redis_session* session;
  int fd;
  unsigned events;  // what hiredis wants now
  unsigned told;    // what the watch callback was last told
};

// Counts how deep we are in a kind of call, exceptions included.
struct depth {
  explicit depth(int& n) : n(n) { ++n; }
  ~depth() { --n; }
  depth(const depth&) = delete;
  depth& operator=(const depth&) = delete;
  int& n;
};

struct request;
using lease_done_fn = std::function<void(int status, const request& r)>;

struct request {
  enum class kind { get, set, del, lease };
  request(kind k, get_done_fn g, count_done_fn c) : what(k), get_done(std::move(g)), count_done(std::move(c)) {}

  kind what;
  get_done_fn get_done;
  count_done_fn count_done;
  std::int64_t deadline_ms = 0;
  int replies_left = 1;  // GET sends GET+PTTL: the last reply completes the request
  int status = 0;
  bool found = false;
  std::string value;
  std::int64_t count = 0;
  std::vector<std::string> held;  // formatted commands waiting for the connection's AUTH/SELECT
  std::string detail;             // why it failed, when it did (no credentials)
  bool outage = true;             // a failure of the server, not an error reply to this request
  bool granted = false;     // lease: SET NX said OK
  lease_done_fn lease_done;  // lease: completion
};

class redis_session final : public async_session {
 public:
  redis_session(backend_url url, backend_options options, watch_fn watch, error_reply_fn on_error_reply)
      : url_(std::move(url)),
        options_(options),
        watch_(std::move(watch)),
        on_error_reply_(std::move(on_error_reply)),
        where_(url_.scheme == url_scheme::unix_socket ? url_.socket_path : fmt::format("{}:{}", url_.host, url_.port)) {}

  ~redis_session() override {
    closing_ = true;
    drop_connection(status_of(errc::canceled));
  }

  // Fencing (backend.hpp, lease_book): a miss takes the key's lease (one more round trip), and
  // a set of that key from this session is then fenced with it.
  void get(const std::string& key, get_done_fn done) override {
    auto* req = new request(request::kind::get,
                            [this, key, done = std::move(done)](int status, std::string_view value, std::int64_t ttl) {
                              looked_up(key, status, value, ttl, done);
                            },
                            nullptr);
    req->replies_left = 2;
    detail::command get_cmd = detail::get_command(key), pttl_cmd = detail::pttl_command(key);
    start(req, {&get_cmd, &pttl_cmd});
  }

  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    std::string placeholder, ttl_text;
    const int fenced = leases_.take(key, placeholder);
    if (fenced < 0) return done(status_of(errc::not_found), 0);  // another holder's lease: refused
    auto* req = new request(request::kind::set, nullptr, std::move(done));
    if (fenced > 0) {
      ttl_text = std::to_string(ttl_ms);
      auto cmd = detail::store_leased_command(key, placeholder, value, ttl_text);
      return start(req, {&cmd});
    }
    auto cmd = detail::set_command(key, value, ttl_ms, ttl_text);
    start(req, {&cmd});
  }

  void del(const std::vector<std::string>& keys, count_done_fn done) override {
    auto* req = new request(request::kind::del, nullptr, std::move(done));
    std::vector<std::string_view> views(keys.begin(), keys.end());
    auto cmd = detail::del_command(views);
    start(req, {&cmd});
  }

  void release(const std::string& key, count_done_fn done) override {
    std::string placeholder;
    if (leases_.take(key, placeholder) <= 0) return done(0, 0);
    auto* req = new request(request::kind::del, nullptr, std::move(done));  // the script returns 1 or 0
    auto cmd = detail::unlock_command(key, placeholder);
    start(req, {&cmd});
  }

  void looked_up(const std::string& key, int status, std::string_view value, std::int64_t ttl, const get_done_fn& done) {
    if (status == 0 && !is_lease(value)) {
      leases_.forget(key);
      return done(0, value, ttl);
    }
    if (status == 0) return done(status_of(errc::not_found), {}, leases_.saw(key, std::string(value)));
    if (status != status_of(errc::not_found) || closing_) return done(status, value, ttl);
    std::string placeholder = make_lease_placeholder();
    auto* req = new request(request::kind::lease, nullptr, nullptr);
    req->replies_left = 3;
    req->lease_done = [this, key, placeholder, done](int st, const request& r) {
      if (st != 0) return done(st, {}, 0);
      if (r.granted) return done(status_of(errc::not_found), {}, leases_.granted(key, placeholder));
      if (r.found && !is_lease(r.value)) {
        leases_.forget(key);
        return done(0, r.value, r.count);
      }
      if (r.found) return done(status_of(errc::not_found), {}, leases_.saw(key, r.value));
      leases_.forget(key);
      done(status_of(errc::not_found), {}, 0);
    };
    std::string ttl_text = std::to_string(default_lease_ms);
    detail::command set_nx = detail::lock_command(key, placeholder, ttl_text), get_cmd = detail::get_command(key),
                    pttl_cmd = detail::pttl_command(key);
    start(req, {&set_nx, &get_cmd, &pttl_cmd});
  }

  void process(unsigned ready) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    depth inside(in_hiredis_);
    if (ac_ && (ready & event_read)) redisAsyncHandleRead(ac_);
    if (ac_ && (ready & event_write)) redisAsyncHandleWrite(ac_);
    if (!queue_.empty() && queue_.front()->deadline_ms <= steady_ms()) {
      failure_detail_ = fmt::format("no reply from {} in time (command timeout {} ms)", where_, options_.command_timeout_ms);
      drop_connection(status_of(errc::timeout));
      failure_detail_.clear();
    }
  }

  std::int64_t timeout_ms() const override {
    if (queue_.empty()) return -1;
    std::int64_t left = queue_.front()->deadline_ms - steady_ms();
    return left < 0 ? 0 : left;
  }

  std::size_t pending() const override { return queue_.size(); }

 private:
  // Queues the request's commands. A lone one (nothing else pending) on an established connection
  // is also written here, at once: waiting for the loop to report the socket writable would cost
  // a loop pass and two watch calls (READ -> READ|WRITE -> READ) for nothing, since there is
  // nothing to batch it with. Requests started while others are pending still queue and go out
  // together when the loop says the socket is writable. Interest changes made meanwhile are held
  // and the watch callback hears only their net change at the end, usually none.
  void start(request* req, std::initializer_list<const detail::command*> cmds) {
    if (closing_) return finish(req, status_of(errc::canceled));
    if (pid_ != detail::current_pid()) forget_inherited();
    // Not from inside hiredis (a completion starting a request runs within its reply loop, where a
    // failed write would free the connection under that loop).
    const bool lone = queue_.empty() && in_hiredis_ == 0;
    hold held(*this);
    bool fresh = false;
    if (!ac_) {
      if (!connect()) {
        req->detail = fmt::format("cannot connect to {}", where_);
        return finish(req, status_of(errc::backend));
      }
      fresh = true;
    }
    req->deadline_ms =
        steady_ms() + options_.command_timeout_ms + (fresh || !connected_ ? options_.connect_timeout_ms : 0);
    if (setup_pending_ > 0) {
      hold_until_setup(req, cmds);  // formats first: on failure req is freed, never queued
      queue_.push_back(req);
      return;
    }
    queue_.push_back(req);
    for (const auto* cmd : cmds) {
      if (redisAsyncCommandArgv(ac_, &redis_session::on_reply, req, cmd->argc(), cmd->argv_data(),
                                cmd->lens.data()) != REDIS_OK) {
        // The context is shutting down; whatever was queued completes through on_reply with NULL.
        // Account for the commands of this request that were never queued.
        if (--req->replies_left == 0) complete(req, status_of(errc::backend));
        else req->status = status_of(errc::backend);
      }
    }
    if (lone) write_if_established();
  }

  // Formats the commands now (their arguments are borrowed for this call only); send_held() sends
  // them once AUTH/SELECT succeeded, setup_refused() or lose() fail the request.
  static void hold_until_setup(request* req, std::initializer_list<const detail::command*> cmds) {
    std::unique_ptr<request> owned(req);  // freed if formatting fails (the caller's done is not called)
    for (const auto* cmd : cmds) {
      char* formatted = nullptr;
      const int len = redisFormatCommandArgv(&formatted, cmd->argc(), cmd->argv_data(), cmd->lens.data());
      if (len < 0) throw std::bad_alloc();
      req->held.emplace_back(formatted, static_cast<std::size_t>(len));
      free(formatted);
    }
    owned.release();
  }

  void send_held() {
    for (request* req : std::vector<request*>(queue_.begin(), queue_.end())) {
      std::vector<std::string> held = std::move(req->held);
      req->held.clear();
      for (const std::string& cmd : held) {
        if (!ac_ || redisAsyncFormattedCommand(ac_, &redis_session::on_reply, req, cmd.data(), cmd.size()) != REDIS_OK) {
          if (--req->replies_left == 0) complete(req, status_of(errc::backend));
          else req->status = status_of(errc::backend);
        }
      }
    }
  }

  // Completes the held requests (never sent) with `status`: their connection is gone.
  void fail_held(int status) {
    std::vector<request*> held;
    for (request* req : queue_)
      if (!req->held.empty()) held.push_back(req);
    for (request* req : held) {
      if (req->detail.empty()) req->detail = failure_detail_;
      req->outage = failure_outage_;
      complete(req, status);
    }
  }

  // The current connection is going away (or gone): forget it so that a completion may reconnect,
  // and fail what was held for it.
  void lose(const redisAsyncContext* ac, int status) {
    if (ac_ != ac) return;
    ac_ = nullptr;
    setup_pending_ = 0;
    fail_held(status);
  }

  // A connection still connecting is left to the loop: its end is detected through the write
  // readiness hiredis asked for. One already read from (READ told) is established.
  void write_if_established() {
    if (!ac_ || !connected_) return;
    const auto* cw = static_cast<const connection_watch*>(ac_->ev.data);
    if (!(cw->told & event_read) || !(cw->events & event_write)) return;
    depth inside(in_hiredis_);
    redisAsyncHandleWrite(ac_);  // on failure hiredis completes what is pending, with the error
  }

  // Holds back watch changes for its lifetime (exceptions included), then tells the net change.
  struct hold {
    explicit hold(redis_session& s) : s(s) { ++s.holding_; }
    ~hold() { s.release(); }
    hold(const hold&) = delete;
    hold& operator=(const hold&) = delete;
    redis_session& s;
  };

  void release() {
    if (--holding_ > 0) return;
    while (!held_.empty()) {  // a watch call may start (and hold) again: re-read held_ each time
      connection_watch* cw = held_.front();
      held_.erase(held_.begin());
      tell(cw);
    }
  }

  bool connect() {
    redisAsyncContext* ac = url_.scheme == url_scheme::unix_socket
                                ? redisAsyncConnectUnix(url_.socket_path.c_str())
                                : redisAsyncConnect(url_.host.c_str(), url_.port);
    if (!ac) return false;
    if (ac->err) {
      redisAsyncFree(ac);
      return false;
    }
    ac->data = this;
    auto* w = new connection_watch{this, ac->c.fd, 0, 0};
    ac->ev.data = w;
    ac->ev.addRead = [](void* p) { static_cast<connection_watch*>(p)->session->change(p, event_read, 0); };
    ac->ev.delRead = [](void* p) { static_cast<connection_watch*>(p)->session->change(p, 0, event_read); };
    ac->ev.addWrite = [](void* p) { static_cast<connection_watch*>(p)->session->change(p, event_write, 0); };
    ac->ev.delWrite = [](void* p) { static_cast<connection_watch*>(p)->session->change(p, 0, event_write); };
    ac->ev.cleanup = [](void* p) {
      auto* cw = static_cast<connection_watch*>(p);
      cw->session->change(p, 0, event_read | event_write);
      delete cw;
    };
    redisAsyncSetConnectCallback(ac, &redis_session::on_connect);
    redisAsyncSetDisconnectCallback(ac, &redis_session::on_disconnect);
    ac_ = ac;
    connected_ = false;
    std::string db_text;
    setup_pending_ = 0;
    for (const auto& cmd : detail::connection_setup(url_, db_text)) {
      // privdata names the command for the message (static storage: AUTH or SELECT).
      void* what = const_cast<char*>(cmd.lens[0] == 4 ? "AUTH" : "SELECT");
      if (redisAsyncCommandArgv(ac_, &redis_session::on_setup_reply, what, cmd.argc(), cmd.argv_data(),
                                cmd.lens.data()) != REDIS_OK) {
        // A setup command not queued would let requests run without it: no connection at all.
        ac_ = nullptr;
        setup_pending_ = 0;
        redisAsyncFree(ac);
        return false;
      }
      ++setup_pending_;
    }
    return true;
  }

  void change(void* p, unsigned add, unsigned remove) {
    auto* cw = static_cast<connection_watch*>(p);
    cw->events = (cw->events | add) & ~remove;
    if (holding_ > 0 && cw->events != 0) {
      if (std::find(held_.begin(), held_.end(), cw) == held_.end()) held_.push_back(cw);
      return;
    }
    // A removal is told at once, even while holding: the descriptor number may be reused by a new
    // connection before the hold ends, and the host must drop the old registration first. It also
    // leaves held_ here, since the cleanup hook frees the watch right after.
    held_.erase(std::remove(held_.begin(), held_.end(), cw), held_.end());
    tell(cw);
  }

  void tell(connection_watch* cw) {
    if (cw->events == cw->told) return;
    cw->told = cw->events;
    if (watch_) watch_(cw->fd, cw->events);
  }

  // In a forked child the connection is the parent's (fork.hpp): it is dropped without any I/O
  // (redisAsyncFree only closes our copy of the descriptor, and the watch callback hears that fd
  // is no longer watched); requests pending at the fork complete with ECANCELED. The next
  // request connects anew.
  void forget_inherited() {
    pid_ = detail::current_pid();
    drop_connection(status_of(errc::canceled));
  }

  // Fails every pending request with `status` and closes the connection; a later request reconnects.
  void drop_connection(int status) {
    if (!ac_) return;
    redisAsyncContext* ac = ac_;
    depth inside(in_hiredis_);
    failure_status_ = status;
    lose(ac, status);
    redisAsyncFree(ac);  // runs on_reply(NULL) for each pending command, then the cleanup hook
    failure_status_ = status_of(errc::backend);
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<redis_session*>(ac->data);
    if (status == REDIS_OK) {
      self->connected_ = true;
    } else if (self->ac_ == ac) {
      // hiredis frees a context whose connect failed, without on_disconnect
      self->failure_detail_ = fmt::format("cannot connect to {}: {}", self->where_, ac->errstr);
      self->lose(ac, status_of(errc::backend));
      self->failure_detail_.clear();
    }
  }

  static void on_disconnect(const redisAsyncContext* ac, int) {
    static_cast<redis_session*>(ac->data)->lose(ac, status_of(errc::backend));
  }

  // AUTH's and SELECT's replies. The last success sends what was held; a refusal fails it, and
  // the connection is dropped (freed once hiredis's callbacks return).
  static void on_setup_reply(redisAsyncContext* ac, void* r, void* what) {
    auto* self = static_cast<redis_session*>(ac->data);
    auto* reply = static_cast<redisReply*>(r);
    if (!reply || self->ac_ != ac) return;  // going away: lose() fails the held requests
    if (reply->type != REDIS_REPLY_ERROR) {
      if (--self->setup_pending_ == 0) self->send_held();
      return;
    }
    const std::string_view text(reply->str, reply->len);  // names no secret
    self->failure_detail_ = fmt::format("{} refused {}: {}", self->where_, static_cast<const char*>(what), text);
    self->failure_outage_ = detail::is_outage_reply(text);
    self->lose(ac, status_of(errc::backend));
    self->failure_detail_.clear();
    self->failure_outage_ = true;
    redisAsyncFree(ac);
  }

  static void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
    auto* self = static_cast<redis_session*>(ac->data);
    auto* req = static_cast<request*>(privdata);
    auto* reply = static_cast<redisReply*>(r);
    if (!reply) {
      // The connection is going away: forget it now so that a callback may reconnect.
      if (req->detail.empty())
        req->detail = !self->failure_detail_.empty()
                          ? self->failure_detail_
                          : fmt::format("connection to {} lost{}{}", self->where_, ac->errstr[0] ? ": " : "", ac->errstr);
      self->lose(ac, self->failure_status_);
      if (req->status == 0) req->status = self->failure_status_;
    } else if (req->status == 0) {
      self->absorb(req, reply);
    }
    if (--req->replies_left == 0) self->complete(req, req->status);
  }

  void absorb(request* req, const redisReply* reply) {
    if (reply->type == REDIS_REPLY_ERROR && on_error_reply_ && on_error_reply_(std::string_view(reply->str, reply->len))) {
      req->status = status_of(errc::backend);
      req->detail = fmt::format("{} redirected the request: {}", where_, std::string_view(reply->str, reply->len));
      req->outage = false;  // the node is up: the slot moved
      return;
    }
    // An error reply fails the request, except to a GET: WRONGTYPE reads as a miss.
    const bool is_get_reply = req->what == request::kind::get || (req->what == request::kind::lease && req->replies_left < 3);
    if (reply->type == REDIS_REPLY_ERROR && !is_get_reply) {
      const std::string_view text(reply->str, reply->len);
      req->status = status_of(errc::backend);
      req->detail = fmt::format("{} replied: {}", where_, text);
      req->outage = detail::is_outage_reply(text);
      return;
    }
    switch (req->what) {
      case request::kind::get:
        if (req->replies_left == 2) {
          // NIL is a miss, and so is WRONGTYPE (a value of another type that someone else wrote).
          if (reply->type == REDIS_REPLY_STRING) {
            req->found = true;
            req->value.assign(reply->str, reply->len);
          }
        } else {
          req->count = detail::remaining_ttl_ms(reply);
        }
        break;
      case request::kind::set:
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) req->status = status_of(errc::not_found);  // fenced: refused
        break;
      case request::kind::lease:
        if (req->replies_left == 3) {
          req->granted = reply->type == REDIS_REPLY_STATUS;
        } else if (req->replies_left == 2) {
          if (reply->type == REDIS_REPLY_STRING) {
            req->found = true;
            req->value.assign(reply->str, reply->len);
          }
        } else {
          req->count = detail::remaining_ttl_ms(reply);
        }
        break;
      case request::kind::del:
        if (reply->type == REDIS_REPLY_INTEGER) req->count = reply->integer;
        break;
    }
  }

  void complete(request* req, int status) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (*it == req) {
        queue_.erase(it);
        break;
      }
    }
    finish(req, status);
  }

  // Runs the caller's callback once and frees the request.
  static void finish(request* req, int status) {
    std::unique_ptr<request> owned(req);
    if (status == status_of(errc::backend) || status == status_of(errc::timeout))
      note_backend_failure(status, req->detail.empty() ? "backend error" : std::move(req->detail), req->outage);
    if (req->what == request::kind::lease) {
      req->lease_done(status, *req);
    } else if (req->what == request::kind::get) {
      if (status == 0 && !req->found) status = status_of(errc::not_found);
      req->get_done(status, req->value, status == 0 ? req->count : 0);
    } else {
      req->count_done(status, status == 0 ? req->count : 0);
    }
  }

  const backend_url url_;
  const backend_options options_;
  const watch_fn watch_;
  const error_reply_fn on_error_reply_;
  redisAsyncContext* ac_ = nullptr;
  bool connected_ = false;
  bool closing_ = false;
  pid_t pid_ = detail::current_pid();  // the process that may use ac_ (fork.hpp)
  int holding_ = 0;     // > 0 inside start(): interest changes are held, told at its end
  int in_hiredis_ = 0;  // > 0 while hiredis may be running its callbacks on our connection
  std::vector<connection_watch*> held_;  // watches whose interest changed while holding
  const std::string where_;  // host:port or socket path, for messages
  int setup_pending_ = 0;    // AUTH/SELECT replies the current connection still waits for
  int failure_status_ = status_of(errc::backend);
  std::string failure_detail_;  // why the connection is being dropped, while it is
  bool failure_outage_ = true;
  lease_book leases_;  // fencing: the leases this session's misses took or saw
  std::deque<request*> queue_;  // oldest first: Redis answers in order, so front has the nearest deadline
};

}  // namespace

std::unique_ptr<async_session> make_redis_session(const backend_url& url, const backend_options& options,
                                                  watch_fn watch, error_reply_fn on_error_reply) {
  return std::make_unique<redis_session>(url, options, std::move(watch), std::move(on_error_reply));
}

}  // namespace httpcache
