// SPDX-License-Identifier: MIT
#include "single_flight.hpp"

#include <new>

#include "error.hpp"

namespace httpcache {

std::shared_ptr<single_flight::call> single_flight::join(const std::string& key, bool& leader) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = calls_.try_emplace(key);
  if (inserted) it->second = std::make_shared<call>();
  leader = inserted;
  return it->second;
}

std::shared_ptr<single_flight::call> single_flight::replace(const std::string& key) {
  auto c = std::make_shared<call>();
  std::lock_guard<std::mutex> lock(mutex_);
  calls_[key] = c;
  return c;
}

void single_flight::before_fork() noexcept { mutex_.lock(); }

void single_flight::after_fork_parent() noexcept { mutex_.unlock(); }

// A call's condition variable may count a waiter that does not exist in the child, and destroying
// it would wait for that waiter forever (glibc). So every call the child inherits is kept alive (a
// reference leaked on purpose: a few bytes per flight under way, once per fork), and those led by
// threads the child does not have leave the map.
void single_flight::after_fork_child() noexcept {
  const auto here = std::this_thread::get_id();  // the forking thread's, in the child as well
  for (auto it = calls_.begin(); it != calls_.end();) {
    const bool kept_alive = new (std::nothrow) std::shared_ptr<call>(it->second) != nullptr;
    it = !kept_alive || it->second->leader == here ? std::next(it) : calls_.erase(it);
  }
  mutex_.unlock();
}

void single_flight::publish(const std::shared_ptr<call>& c, observation seen) {
  {
    std::lock_guard<std::mutex> lock(c->mutex);
    if (c->published) return;
    c->seen = std::move(seen);
    c->published = true;
  }
  c->cv.notify_all();
}

void single_flight::finish(const std::string& key, const std::shared_ptr<call>& c,
                           std::optional<shared_result> result, std::optional<failure> error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = calls_.find(key);
    if (it != calls_.end() && it->second == c) calls_.erase(it);
    finished_.fetch_add(1, std::memory_order_release);
  }
  {
    std::lock_guard<std::mutex> lock(c->mutex);
    c->result = std::move(result);
    c->error = std::move(error);
    c->done = true;
    if (!c->published) {  // failed before observing anything: its followers get its failure
      c->seen.generation = UINT64_MAX;
      c->published = true;
    }
  }
  c->cv.notify_all();
}

std::optional<single_flight::observation> single_flight::observed(const std::shared_ptr<call>& c,
                                                                  std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(c->mutex);
  if (!c->cv.wait_for(lock, wait, [&] { return c->published; })) return std::nullopt;
  return c->seen;
}

single_flight::outcome single_flight::wait(const std::shared_ptr<call>& c, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(c->mutex);
  outcome out;
  if (!c->cv.wait_for(lock, wait, [&] { return c->done; })) return out;
  out.done = true;
  out.result = c->result;
  out.error = c->error;
  return out;
}

void single_flight::failure::raise() const {
  if (computed) throw compute_failed{code};
  if (code == static_cast<int>(errc::no_memory)) throw std::bad_alloc();
  throw error(static_cast<errc>(code), message);
}

single_flight::failure single_flight::current_failure() {
  failure f;
  try {
    throw;
  } catch (const compute_failed& e) {
    f.computed = true;
    f.code = e.code;
  } catch (const error& e) {
    f.code = static_cast<int>(e.code());
    f.message = e.what();
  } catch (const std::bad_alloc&) {
    f.code = static_cast<int>(errc::no_memory);
  } catch (const std::exception& e) {
    f.code = static_cast<int>(errc::generic);
    f.message = std::string("internal error: ") + e.what();
  } catch (...) {
    f.code = static_cast<int>(errc::generic);
    f.message = "internal error: unknown exception";
  }
  return f;
}

}  // namespace httpcache
