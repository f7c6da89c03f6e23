// SPDX-License-Identifier: MIT
// In-process stampede protection: concurrent callers of the same cold key share one computation.
// The first caller leads; the others wait (bounded) for its result. A leader's failure is shared
// with its waiters (Go's singleflight semantics); if the leader declines to share its value, or
// the wait runs out, a waiter computes by itself: a stuck leader can slow callers, never block them.
//
// Fencing (docs/design.md): a flight publishes what it observed in the backend before computing
// (its own lease's placeholder, another holder's placeholder, or a value) and the invalidation
// generation of its key; cache.cpp lets a caller join only a flight its own observation matches,
// so a caller arriving after an invalidation never joins a computation that began before it.
//
// fork(): the map's mutex is held across it (fork.hpp), and a child forgets the flights led by
// threads it does not have (their followers would each wait out their bound for nothing).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "fork.hpp"

namespace httpcache {

class single_flight : private detail::fork_participant {
 public:
  struct shared_result {
    std::string value;
    std::int64_t ttl_ms = 0;
    int outcome = 0;  // the leader's outcome, for its followers to report as a hit
  };

  // What the leader observed before computing; published once.
  struct observation {
    std::string placeholder;  // the lease placeholder it computes under, or saw; "" for none
    std::uint64_t generation = 0;
    bool value = false;  // it found a value (no computation)
    // The generations of the tags it read before computing (tag_set::signature): a caller that
    // read others (a tag was invalidated in between, by any process) must not share its value.
    std::string tags;
  };

  // A leader's failure as a value: each follower throws its own exception from it. (Sharing the
  // leader's exception object through an exception_ptr is correct, but the C++ runtime frees it
  // on whichever thread finishes last, with no synchronisation ThreadSanitizer can see.)
  struct failure {
    bool computed = false;  // a compute_failed with `code`; else an error(errc(code), message)
    int code = 0;
    std::string message;
    [[noreturn]] void raise() const;
  };
  // The failure of the exception being handled (call inside a catch block).
  static failure current_failure();

  // How a follower's wait ended.
  struct outcome {
    bool done = false;  // false: the wait ran out
    std::optional<shared_result> result;
    std::optional<failure> error;  // the leader's failure
  };

  class call;

  // Joins the flight for key. Returns a leader ticket (leader true) or a follower ticket.
  std::shared_ptr<call> join(const std::string& key, bool& leader);
  // Starts a new flight for key, replacing the current one (which its own followers still wait
  // for): the caller leads it.
  std::shared_ptr<call> replace(const std::string& key);

  // Leader: publish what it observed (before computing).
  static void publish(const std::shared_ptr<call>& c, observation seen);
  // Leader: publish the result (nullopt when not shareable) or its failure, and leave the flight.
  void finish(const std::string& key, const std::shared_ptr<call>& c, std::optional<shared_result> result,
              std::optional<failure> error = std::nullopt);

  // Counts finished flights.
  std::uint64_t finished() const noexcept { return finished_.load(std::memory_order_acquire); }

  // Follower: the leader's observation, once published (nullopt if not within `wait`).
  static std::optional<observation> observed(const std::shared_ptr<call>& c, std::chrono::milliseconds wait);
  // Follower: wait up to `wait` for the leader's result or failure.
  static outcome wait(const std::shared_ptr<call>& c, std::chrono::milliseconds wait);

 private:
  void before_fork() noexcept override;
  void after_fork_parent() noexcept override;
  void after_fork_child() noexcept override;

  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<call>> calls_;
  std::atomic<std::uint64_t> finished_{0};
  detail::fork_registration registered_{*this};  // last
};

class single_flight::call {
 public:
  const std::thread::id leader = std::this_thread::get_id();  // made by its leader
  std::mutex mutex;
  std::condition_variable cv;
  bool published = false;
  observation seen;
  bool done = false;
  std::optional<shared_result> result;
  std::optional<failure> error;
};

}  // namespace httpcache
