// SPDX-License-Identifier: MIT
#include "guarded_backend.hpp"

#include "thread_state.hpp"

namespace httpcache {

namespace {

bool is_backend_failure(int status) {
  return status == static_cast<int>(errc::backend) || status == static_cast<int>(errc::timeout);
}

constexpr const char* breaker_open_text = "the cache backend is skipped: circuit breaker open after repeated failures";

int breaker_skip() { return note_backend_failure(static_cast<int>(errc::backend), breaker_open_text); }

// The outage flag of the failure being completed (the session noted it just before).
bool outage_of(int status) { return !is_backend_failure(status) || last_backend_failure().outage; }

class guarded_session final : public async_session {
 public:
  guarded_session(std::unique_ptr<async_session> inner, guarded_backend& owner)
      : inner_(std::move(inner)), owner_(owner) {}

  void get(const std::string& key, get_done_fn done) override {
    if (!owner_.admit()) return done(breaker_skip(), {}, 0);
    // Completions capture the owner, not this session: the session's destructor cancels (and so
    // completes) what is pending while its members are being destroyed.
    inner_->get(key, [owner = &owner_, done = std::move(done)](int status, std::string_view value,
                                                               std::int64_t ttl_ms) {
      owner->record(status, outage_of(status));
      done(status, value, ttl_ms);
    });
  }
  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    if (!owner_.admit()) return done(breaker_skip(), 0);
    inner_->set(key, value, ttl_ms, wrap(std::move(done)));
  }
  void del(const std::vector<std::string>& keys, count_done_fn done) override {
    if (!owner_.admit()) return done(breaker_skip(), 0);
    inner_->del(keys, wrap(std::move(done)));
  }
  void release(const std::string& key, count_done_fn done) override {
    if (!owner_.admit()) return done(breaker_skip(), 0);
    inner_->release(key, wrap(std::move(done)));
  }
  void stamp(const std::string& tag_key, const std::string& candidate, std::int64_t ttl_ms, get_done_fn done) override {
    if (!owner_.admit()) return done(breaker_skip(), {}, 0);
    inner_->stamp(tag_key, candidate, ttl_ms, [owner = &owner_, done = std::move(done)](int status, std::string_view g,
                                                                                       std::int64_t t) {
      owner->record(status, outage_of(status));
      done(status, g, t);
    });
  }
  void expect(const std::string& key, std::string value) override { inner_->expect(key, std::move(value)); }
  void del_if(const std::string& key, std::string value, count_done_fn done) override {
    if (!owner_.admit()) return done(breaker_skip(), 0);
    inner_->del_if(key, std::move(value), wrap(std::move(done)));
  }
  void process(unsigned ready) override { inner_->process(ready); }
  std::int64_t timeout_ms() const override { return inner_->timeout_ms(); }
  std::size_t pending() const override { return inner_->pending(); }

 private:
  count_done_fn wrap(count_done_fn done) {
    return [owner = &owner_, done = std::move(done)](int status, std::int64_t count) {
      owner->record(status, outage_of(status));
      done(status, count);
    };
  }

  std::unique_ptr<async_session> inner_;
  guarded_backend& owner_;
};

}  // namespace

backend_failure& last_backend_failure() noexcept { return thread_state<backend_failure, backend_failure>(); }

int note_backend_failure(int status, std::string detail, bool outage) {
  backend_failure& last = last_backend_failure();
  last.detail = std::move(detail);
  last.outage = outage;
  return status;
}

bool guarded_backend::admit() {
  if (breaker_.allow()) return true;
  stats::bump(stats_.breaker_skips);
  return false;
}

void guarded_backend::record(int status, bool outage) {
  if (is_backend_failure(status)) stats::bump(stats_.errors);
  if (!is_backend_failure(status) || !outage) {
    breaker_.record_success();  // the server answered
    return;
  }
  if (breaker_.record_failure()) stats::bump(stats_.breaker_trips);
}

void guarded_backend::throw_breaker_open() {
  note_backend_failure(static_cast<int>(errc::backend), breaker_open_text);
  throw backend_error(errc::backend, breaker_open_text);
}

lookup_result guarded_backend::get(std::string_view key) {
  return guarded([&] { return inner_->get(key); });
}

void guarded_backend::set(std::string_view key, std::string_view value, std::int64_t ttl_ms) {
  guarded([&] {
    inner_->set(key, value, ttl_ms);
    return 0;
  });
}

std::size_t guarded_backend::del(const std::vector<std::string_view>& keys) {
  return guarded([&] { return inner_->del(keys); });
}

bool guarded_backend::try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) {
  return guarded([&] { return inner_->try_lock(lock_key, token, ttl_ms); });
}

void guarded_backend::unlock(std::string_view lock_key, std::string_view token) {
  guarded([&] {
    inner_->unlock(lock_key, token);
    return 0;
  });
}

std::unique_ptr<async_session> guarded_backend::open_async(watch_fn watch) {
  return std::make_unique<guarded_session>(inner_->open_async(std::move(watch)), *this);
}

}  // namespace httpcache
