// SPDX-License-Identifier: MIT
#include "single_flight.hpp"

namespace httpcache {

std::shared_ptr<single_flight::call> single_flight::join(const std::string& key, bool& leader) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = calls_.try_emplace(key);
  if (inserted) it->second = std::make_shared<call>();
  leader = inserted;
  return it->second;
}

void single_flight::finish(const std::string& key, const std::shared_ptr<call>& c,
                           std::optional<shared_result> result) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = calls_.find(key);
    if (it != calls_.end() && it->second == c) calls_.erase(it);
    finished_.fetch_add(1, std::memory_order_release);
  }
  {
    std::lock_guard<std::mutex> lock(c->mutex);
    c->result = std::move(result);
    c->done = true;
  }
  c->done_cv.notify_all();
}

std::optional<single_flight::shared_result> single_flight::wait(const std::shared_ptr<call>& c,
                                                               std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(c->mutex);
  if (!c->done_cv.wait_for(lock, wait, [&] { return c->done; })) return std::nullopt;
  return c->result;
}

}  // namespace httpcache
