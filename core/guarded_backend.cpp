// SPDX-License-Identifier: MIT
#include "guarded_backend.hpp"

namespace httpcache {

namespace {

bool is_backend_failure(int status) {
  return status == static_cast<int>(errc::backend) || status == static_cast<int>(errc::timeout);
}

[[noreturn]] void throw_breaker_open() {
  throw backend_error(errc::backend, "the cache backend is skipped: circuit breaker open after repeated failures");
}

class guarded_session final : public async_session {
 public:
  guarded_session(std::unique_ptr<async_session> inner, guarded_backend& owner)
      : inner_(std::move(inner)), owner_(owner) {}

  void get(const std::string& key, get_done_fn done) override {
    if (!owner_.admit()) return done(static_cast<int>(errc::backend), {}, 0);
    // Completions capture the owner, not this session: the session's destructor cancels (and so
    // completes) what is pending while its members are being destroyed.
    inner_->get(key, [owner = &owner_, done = std::move(done)](int status, std::string_view value,
                                                               std::int64_t ttl_ms) {
      owner->record(status);
      done(status, value, ttl_ms);
    });
  }
  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    if (!owner_.admit()) return done(static_cast<int>(errc::backend), 0);
    inner_->set(key, value, ttl_ms, wrap(std::move(done)));
  }
  void del(const std::vector<std::string>& keys, count_done_fn done) override {
    if (!owner_.admit()) return done(static_cast<int>(errc::backend), 0);
    inner_->del(keys, wrap(std::move(done)));
  }
  void process(unsigned ready) override { inner_->process(ready); }
  std::int64_t timeout_ms() const override { return inner_->timeout_ms(); }
  std::size_t pending() const override { return inner_->pending(); }

 private:
  count_done_fn wrap(count_done_fn done) {
    return [owner = &owner_, done = std::move(done)](int status, std::int64_t count) {
      owner->record(status);
      done(status, count);
    };
  }

  std::unique_ptr<async_session> inner_;
  guarded_backend& owner_;
};

}  // namespace

bool guarded_backend::admit() {
  if (breaker_.allow()) return true;
  stats::bump(stats_.breaker_skips);
  return false;
}

void guarded_backend::record(int status) {
  if (!is_backend_failure(status)) {
    breaker_.record_success();
    return;
  }
  stats::bump(stats_.errors);
  if (breaker_.record_failure()) stats::bump(stats_.breaker_trips);
}

template <typename Op>
auto guarded_backend::guarded(Op&& op) -> decltype(op()) {
  if (!admit()) throw_breaker_open();
  try {
    auto result = op();
    record(0);
    return result;
  } catch (const backend_error& e) {
    record(static_cast<int>(e.code()));
    throw;
  }
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
