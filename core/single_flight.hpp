// SPDX-License-Identifier: MIT
// In-process stampede protection: concurrent callers of the same cold key share one computation.
// The first caller leads; the others wait (bounded) for its result. If the leader fails, or the
// wait runs out, a follower computes by itself: a stuck leader can slow callers, never block them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace httpcache {

class single_flight {
 public:
  struct shared_result {
    std::string value;
    std::int64_t ttl_ms = 0;
    int outcome = 0;  // the leader's outcome, for its followers to report as a hit
  };

  class call;

  // Joins the flight for key. Returns a leader ticket (lead() true) or a follower ticket.
  std::shared_ptr<call> join(const std::string& key, bool& leader);

  // Leader: publish the result (or nullopt on failure) and leave the flight.
  void finish(const std::string& key, const std::shared_ptr<call>& c, std::optional<shared_result> result);

  // Counts finished flights. A caller that saw a miss and then leads a new flight needs to look
  // again only if some flight finished in between (it may have stored this very key).
  std::uint64_t finished() const noexcept { return finished_.load(std::memory_order_acquire); }

  // Follower: wait up to `wait` for the leader; nullopt if it failed or took too long.
  static std::optional<shared_result> wait(const std::shared_ptr<call>& c, std::chrono::milliseconds wait);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<call>> calls_;
  std::atomic<std::uint64_t> finished_{0};
};

class single_flight::call {
 public:
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::optional<shared_result> result;
};

}  // namespace httpcache
