// SPDX-License-Identifier: MIT
#include "immediate_session.hpp"

#include <utility>

namespace httpcache {

namespace {

class immediate_session final : public async_session {
 public:
  explicit immediate_session(backend& store) : store_(store) {}

  // A miss takes the key's lease (or reports another holder's): see lease_book.
  void get(const std::string& key, get_done_fn done) override {
    run(done, [&](const get_done_fn& once) { get_now(key, once); }, std::string_view(), std::int64_t{0});
  }
  // Fenced by the lease of this session's miss of the key, if any: ENOTFOUND when refused.
  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    run(done, [&](const count_done_fn& once) {
      std::string placeholder;
      switch (leases_.take(key, placeholder)) {
        case 0: store_.set(key, value, ttl_ms); break;
        case 1:
          if (!store_.store_leased(key, placeholder, value, ttl_ms)) return once(static_cast<int>(errc::not_found), 0);
          break;
        default: return once(static_cast<int>(errc::not_found), 0);
      }
      once(0, 0);
    }, std::int64_t{0});
  }
  void del(const std::vector<std::string>& keys, count_done_fn done) override {
    run(done, [&](const count_done_fn& once) {
      std::vector<std::string_view> views(keys.begin(), keys.end());
      once(0, static_cast<std::int64_t>(store_.del(views)));
    }, std::int64_t{0});
  }
  void expect(const std::string& key, std::string value) override { leases_.expect(key, std::move(value)); }
  void release(const std::string& key, count_done_fn done) override {
    run(done, [&](const count_done_fn& once) {
      std::string placeholder;
      bool expected = false;
      if (leases_.take(key, placeholder, &expected) <= 0 || expected) return once(0, 0);
      store_.release(key, placeholder);
      once(0, 1);
    }, std::int64_t{0});
  }
  void stamp(const std::string& key, const std::string& candidate, std::int64_t ttl_ms, get_done_fn done) override {
    run(done, [&](const get_done_fn& once) {
      lease_result l = store_.lease(key, candidate, ttl_ms);
      if (l.granted) return once(0, candidate, 0);
      once(0, l.current.found ? std::string_view(l.current.value) : std::string_view(), 0);
    }, std::string_view(), std::int64_t{0});
  }
  void del_if(const std::string& key, std::string value, count_done_fn done) override {
    run(done, [&](const count_done_fn& once) {
      store_.release(key, value);
      once(0, 0);
    }, std::int64_t{0});
  }
  void process(unsigned) override {}
  std::int64_t timeout_ms() const override { return -1; }
  std::size_t pending() const override { return 0; }

 private:
  void get_now(const std::string& key, const get_done_fn& done) {
    auto r = store_.get(key);
    if (r.found && !is_lease(r.value)) {
      leases_.forget(key);
      return done(0, r.value, r.ttl_ms);
    }
    if (r.found) return done(static_cast<int>(errc::not_found), {}, leases_.saw(key, r.value));
    std::string placeholder = make_lease_placeholder();
    lease_result l = store_.lease(key, placeholder, default_lease_ms);
    if (l.granted) return done(static_cast<int>(errc::not_found), {}, leases_.granted(key, std::move(placeholder)));
    if (l.current.found && !is_lease(l.current.value)) {
      leases_.forget(key);
      return done(0, l.current.value, l.current.ttl_ms);
    }
    if (l.current.found) return done(static_cast<int>(errc::not_found), {}, leases_.saw(key, l.current.value));
    leases_.forget(key);
    done(static_cast<int>(errc::not_found), {}, 0);
  }

  // Runs body(once), `once` being `done` that notes it ran. A store failure before it ran completes
  // the request with that failure instead; a failure once it ran came from the caller's completion
  // (not the store's) and propagates.
  template <typename Done, typename Body, typename... Failed>
  static void run(const Done& done, Body&& body, Failed... failed) {
    bool ran = false;
    const Done once = [&](auto... args) {
      ran = true;
      done(args...);
    };
    try {
      body(once);
    } catch (const backend_error& e) {
      if (ran) throw;
      done(note_backend_failure(static_cast<int>(e.code()), e.what(), e.outage()), failed...);
    }
  }

  backend& store_;
  lease_book leases_;
};

}  // namespace

std::unique_ptr<async_session> make_immediate_session(backend& store) {
  return std::make_unique<immediate_session>(store);
}

}  // namespace httpcache
