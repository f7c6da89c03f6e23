// SPDX-License-Identifier: MIT
// The non-blocking session on one Redis connection (connection.hpp) driven through a watch_fn (no
// loop library): requests queued in order with deadlines, replies matched in order, reconnect on
// the next request after a failure. Cluster node sessions are these too, so every policy here
// (such as writing a lone request at once) holds for a cluster's nodes as well.
//
// Watching: after each call the session works out what it waits for (the connection's fd and
// read/write interest) and tells the watch callback only the net change, usually none. A removal
// is told before the socket is closed, since the descriptor number may be reused at once.
//
// A new connection sends AUTH and SELECT first, and requests started meanwhile are held back
// until both succeed: pipelined behind them, they would run even when AUTH is refused (as the
// server's default user) or SELECT is (in database 0), reading and writing another user's or
// database's keys. A refused AUTH or SELECT fails the held requests instead.
#include "session.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <deque>
#include <vector>

#include "../clock.hpp"
#include "../tags.hpp"
#include "commands.hpp"
#include "../fork.hpp"

namespace httpcache {

namespace {

constexpr int status_of(errc e) { return static_cast<int>(e); }
constexpr std::int64_t poll_parked_ms = 2;  // how often parked requests ask locate() again

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
  enum class kind { get, set, del, lease, peek };  // peek: a lone GET, completed through lease_done
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
  std::string held;      // RESP waiting for the connection's AUTH/SELECT
  std::string detail;    // why it failed, when it did (no credentials)
  bool outage = true;    // a failure of the server, not an error reply to this request
  bool granted = false;  // lease: SET NX said OK
  lease_done_fn lease_done;  // lease: completion
};

class redis_session final : public async_session {
 public:
  redis_session(backend_url url, backend_options options, watch_fn watch, session_target target)
      : url_(std::move(url)), options_(options), watch_(std::move(watch)), target_(std::move(target)) {
    default_where_.host = url_.host;
    default_where_.port = url_.port;
    default_where_.socket_path = url_.socket_path;
  }

  ~redis_session() override {
    closing_ = true;
    drop_connection(status_of(errc::canceled), "the session was closed", true);
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

  void expect(const std::string& key, std::string value) override { leases_.expect(key, std::move(value)); }

  void release(const std::string& key, count_done_fn done) override {
    std::string placeholder;
    bool expected = false;
    if (leases_.take(key, placeholder, &expected) <= 0 || expected) return done(0, 0);
    auto* req = new request(request::kind::del, nullptr, std::move(done));  // the script returns 1 or 0
    auto cmd = detail::unlock_command(key, placeholder);
    start(req, {&cmd});
  }

  // A tag's generation: a GET, and only when there is none a lease-shaped request (SET NX, GET,
  // PTTL) outside the lease book, which creates it.
  void stamp(const std::string& tag_key, const std::string& candidate, std::int64_t ttl_ms, get_done_fn done) override {
    auto* req = new request(request::kind::peek, nullptr, nullptr);
    req->lease_done = [this, tag_key, candidate, ttl_ms, done = std::move(done)](int st, const request& r) {
      if (st != 0) return done(st, {}, 0);
      if (r.found || closing_) return done(0, r.value, 0);
      auto* create = new request(request::kind::lease, nullptr, nullptr);
      create->replies_left = 3;
      create->lease_done = [done](int st2, const request& r2) {
        if (st2 != 0) return done(st2, {}, 0);
        done(0, r2.found ? std::string_view(r2.value) : std::string_view(), 0);
      };
      const std::string ttl_text = std::to_string(ttl_ms);
      detail::command set_nx = detail::lock_command(tag_key, candidate, ttl_text),
                      get_cmd = detail::get_command(tag_key), pttl_cmd = detail::pttl_command(tag_key);
      start(create, {&set_nx, &get_cmd, &pttl_cmd});
    };
    detail::command get_cmd = detail::get_command(tag_key);
    start(req, {&get_cmd});
  }

  void del_if(const std::string& key, std::string value, count_done_fn done) override {
    auto* req = new request(request::kind::del, nullptr, std::move(done));  // the script returns 1 or 0
    auto cmd = detail::unlock_command(key, value);
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
    else if (conn_ && ready) pump(ready);
    else if (!conn_ && !queue_.empty()) connect_parked();
    if (!queue_.empty() && queue_.front()->deadline_ms <= steady_ms()) {
      const bool parked = !conn_;
      drop_connection(status_of(errc::timeout),
                      parked ? fmt::format("{} was not found in time", url_.redacted())
                             : fmt::format("no reply from {} in time (command timeout {} ms)", where_,
                                           options_.command_timeout_ms),
                      true);
    }
  }

  std::int64_t timeout_ms() const override {
    if (queue_.empty()) return -1;
    std::int64_t left = queue_.front()->deadline_ms - steady_ms();
    if (!conn_) left = std::min<std::int64_t>(left, poll_parked_ms);  // ask locate() again soon
    return left < 0 ? 0 : left;
  }

  std::size_t pending() const override { return queue_.size(); }

 private:
  // Queues the request's commands. A lone one (nothing else pending) on an established connection
  // is also written here, at once: waiting for the loop to report the socket writable would cost
  // a loop pass and two watch calls for nothing, since there is nothing to batch it with.
  // Requests started while others are pending, or from inside process() (a completion starting
  // one), queue and go out together: when the loop says the socket is writable, or at the end of
  // that process() call.
  void start(request* req, std::initializer_list<const detail::command*> cmds) {
    if (closing_) return finish(req, status_of(errc::canceled));
    if (pid_ != detail::current_pid()) forget_inherited();
    const bool lone = queue_.empty() && in_process_ == 0;
    bool fresh = false;
    if (!conn_ && queue_.empty()) {  // with requests queued and no connection, they are parked
      if (connect(req->detail) == connect_result::failed) return finish(req, status_of(errc::backend));
      fresh = true;
    }
    req->deadline_ms = steady_ms() + options_.command_timeout_ms +
                       (fresh || !conn_ || !conn_->established() ? options_.connect_timeout_ms : 0);
    if (!conn_ || setup_pending_ > 0) {  // parked until the place is known, or held for AUTH/SELECT
      for (const auto* cmd : cmds) detail::append_resp(req->held, *cmd);
    } else {
      for (const auto* cmd : cmds) conn_->append(*cmd);
    }
    queue_.push_back(req);
    if (!conn_) return;  // parked: timeout_ms() brings the host back soon
    if (lone && conn_->established()) return pump(0);
    if (in_process_ == 0) update_watch(detail::net::want_read | detail::net::want_write);
  }

  // Parked requests (no place to connect to yet) connect once locate() names one; failing to,
  // they fail now.
  void connect_parked() {
    std::string why;
    const connect_result r = connect(why);
    if (r == connect_result::parked) return;
    if (r == connect_result::failed) return drop_connection(status_of(errc::backend), why, true);
    if (setup_pending_ == 0) send_held();
    update_watch(detail::net::want_read | detail::net::want_write);
  }

  // Advances the connection: writes, reads when `ready` says so, completes what was answered,
  // and writes what those completions started. Any failure drops the connection. A completion
  // may also have connected anew (a request started after its connection failed): the watch
  // callback hears of that connection here, since start() defers to the end of this call.
  // Connections are told apart by generation, not address: a new one may be allocated where a
  // dropped one was.
  void pump(unsigned ready) {
    detail::connection* c = conn_.get();
    const std::uint64_t generation = generation_;
    {
      depth inside(in_process_);
      std::string why;
      int status = status_of(errc::backend);
      try {
        advance_and_complete(c, generation, ready);
      } catch (const backend_error& e) {
        why = e.what();
        status = status_of(e.code() == errc::timeout ? errc::timeout : errc::backend);
      } catch (const std::exception& e) {  // a bad server name for TLS, out of memory: no hang
        why = fmt::format("connection to {} failed: {}", where_, e.what());
      }
      if (!why.empty() && generation_ == generation) drop_connection(status, why, true);
    }
    if (conn_ && generation_ != generation) update_watch(detail::net::want_read | detail::net::want_write);
  }

  void advance_and_complete(detail::connection* c, std::uint64_t generation, unsigned ready) {
    unsigned wants = c->advance(ready);
    while (generation_ == generation) {
      detail::reply_ptr reply = c->take_reply();
      if (!reply) break;
      on_reply(std::move(reply));
    }
    if (generation_ != generation) return;  // dropped (refused AUTH/SELECT, READONLY); the watch was told
    if (c->has_output()) wants = c->advance(0);
    update_watch(wants);
  }

  enum class connect_result { connected, parked, failed };

  connect_result connect(std::string& why) {
    try {
      std::optional<detail::endpoint> where = target_.locate ? target_.locate() : default_where_;
      if (!where) return connect_result::parked;
      where_ = where->name();
      conn_ = std::make_unique<detail::connection>(*where, target_.tls.get());
      ++generation_;
    } catch (const backend_error& e) {
      why = e.what();
      if (target_.lost) target_.lost();
      return connect_result::failed;
    }
    std::string db_text;
    setup_pending_ = 0;
    for (const auto& cmd : detail::connection_setup(url_, db_text)) {
      conn_->append(cmd);
      setup_what_[setup_pending_++] = cmd.lens[0] == 4 ? "AUTH" : "SELECT";
    }
    setup_count_ = setup_pending_;
    return connect_result::connected;
  }

  // The last setup reply sends what was held, in order.
  void send_held() {
    for (request* req : queue_) {
      conn_->append(req->held);
      req->held.clear();
    }
  }

  void on_reply(detail::reply_ptr reply) {
    if (setup_pending_ > 0) {
      const char* what = setup_what_[setup_count_ - setup_pending_];
      if (reply->type == REDIS_REPLY_ERROR) {
        const std::string_view text(reply->str, reply->len);  // names no secret
        return drop_connection(status_of(errc::backend), fmt::format("{} refused {}: {}", where_, what, text),
                               detail::is_outage_reply(text));
      }
      if (--setup_pending_ == 0) send_held();
      return;
    }
    if (queue_.empty()) return;  // cannot happen: Redis answers each command once
    request* req = queue_.front();
    if (req->status == 0) absorb(req, reply.get());
    if (--req->replies_left == 0) {
      queue_.pop_front();
      finish(req, req->status);
    }
    // The node was demoted (a failover): this connection cannot serve writes any more, so it
    // goes, and the next request connects to whatever locate() names then.
    if (readonly_ && conn_) {
      readonly_ = false;
      drop_connection(status_of(errc::backend), fmt::format("{} is no master any more (READONLY)", where_), true);
    }
  }

  void absorb(request* req, const redisReply* reply) {
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string_view text(reply->str, reply->len);
      if (target_.on_error_reply && target_.on_error_reply(text)) {
        req->status = status_of(errc::backend);
        req->detail = fmt::format("{} redirected the request: {}", where_, text);
        req->outage = false;  // the node is up: the slot moved
        return;
      }
      if (text.substr(0, 8) == "READONLY") readonly_ = true;  // a replica now: see on_reply
    }
    // An error reply fails the request, except to a GET: WRONGTYPE reads as a miss.
    const bool is_get_reply = req->what == request::kind::get || req->what == request::kind::peek ||
                              (req->what == request::kind::lease && req->replies_left < 3);
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
      case request::kind::peek:
        if (reply->type == REDIS_REPLY_STRING) {
          req->found = true;
          req->value.assign(reply->str, reply->len);
        }
        break;
    }
  }

  // Tells the watch callback what changed: the descriptor (a new connection, or the next address
  // of one) and the interest in it.
  void update_watch(unsigned wants) {
    const detail::net::socket_t fd = conn_ ? conn_->fd() : detail::net::invalid_socket;
    if (fd != told_fd_) {
      if (told_fd_ != detail::net::invalid_socket && told_events_ != 0 && watch_) watch_(told_fd_, 0);
      told_fd_ = fd;
      told_events_ = 0;
    }
    unsigned events = 0;
    if (wants & detail::net::want_read) events |= event_read;
    if (wants & detail::net::want_write) events |= event_write;
    if (events == told_events_ || fd == detail::net::invalid_socket) return;
    told_events_ = events;
    if (watch_) watch_(fd, events);
  }

  // In a forked child the connection is the parent's (fork.hpp): it is dropped without any I/O
  // (closing only our copy of the descriptor, no TLS close_notify), and the watch callback hears
  // that fd is no longer watched; requests pending at the fork complete with ECANCELED. The next
  // request connects anew.
  void forget_inherited() {
    pid_ = detail::current_pid();
    drop_connection(status_of(errc::canceled), "the connection belongs to the parent process", true);
  }

  // Fails every pending request with `status` and closes the connection; a later request
  // (possibly one started by those completions) reconnects. Parked requests fail too.
  void drop_connection(int status, const std::string& why, bool outage) {
    if (!conn_ && queue_.empty()) return;
    if (told_fd_ != detail::net::invalid_socket && told_events_ != 0 && watch_) watch_(told_fd_, 0);
    told_fd_ = detail::net::invalid_socket;
    told_events_ = 0;
    conn_.reset();
    ++generation_;
    setup_pending_ = 0;
    readonly_ = false;
    if (status != status_of(errc::canceled) && outage && target_.lost) target_.lost();
    std::deque<request*> failed;
    failed.swap(queue_);
    for (request* req : failed) {
      if (req->detail.empty()) req->detail = why;
      req->outage = outage;
      finish(req, status);
    }
  }

  // Runs the caller's callback once and frees the request.
  static void finish(request* req, int status) {
    std::unique_ptr<request> owned(req);
    if (status == status_of(errc::backend) || status == status_of(errc::timeout))
      note_backend_failure(status, req->detail.empty() ? "backend error" : std::move(req->detail), req->outage);
    if (req->what == request::kind::lease || req->what == request::kind::peek) {
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
  const session_target target_;
  detail::endpoint default_where_;
  std::unique_ptr<detail::connection> conn_;
  bool closing_ = false;
  bool readonly_ = false;  // a READONLY reply was read: drop the connection once it is absorbed
  std::uint64_t generation_ = 0;  // changes whenever conn_ is made or dropped
  pid_t pid_ = detail::current_pid();  // the process that may use conn_ (fork.hpp)
  int in_process_ = 0;  // > 0 while completions run inside pump()
  detail::net::socket_t told_fd_ = detail::net::invalid_socket;
  unsigned told_events_ = 0;
  std::string where_;       // host:port or socket path, for messages
  int setup_pending_ = 0;   // AUTH/SELECT replies the current connection still waits for
  int setup_count_ = 0;
  const char* setup_what_[2] = {nullptr, nullptr};  // what each setup command is, for messages
  lease_book leases_;  // fencing: the leases this session's misses took or saw
  std::deque<request*> queue_;  // oldest first: Redis answers in order, so front has the nearest deadline
};

}  // namespace

std::unique_ptr<async_session> make_redis_session(const backend_url& url, const backend_options& options,
                                                  watch_fn watch, session_target target) {
  return std::make_unique<redis_session>(url, options, std::move(watch), std::move(target));
}

}  // namespace httpcache
