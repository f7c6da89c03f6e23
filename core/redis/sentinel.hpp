// SPDX-License-Identifier: MIT
// Internal to core/redis/: where a Sentinel-monitored master is. The sentinels are asked with
// SENTINEL get-master-addr-by-name, and a background thread per process keeps the answer
// current: it listens for +switch-master on one sentinel (a failover is heard at once) and asks
// again whenever a caller reports the master lost (a connection failure, a READONLY reply from a
// master turned replica). A named master is checked with ROLE before it is believed (a sentinel
// cut off from the others may still name the old one). Blocking callers may wait for the first
// answer (a recent failure to get one fails them at once); non-blocking sessions never wait:
// their requests are parked until it is known (session.hpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "../backend.hpp"
#include "../url.hpp"
#include "connection.hpp"
#include "../fork.hpp"

namespace httpcache::detail {

class tls_client;

class sentinel_locator final : private fork_participant {
 public:
  // Starts asking in the background at once. `tls` (null: plain) is used for the sentinels too.
  sentinel_locator(backend_url url, backend_options options, std::shared_ptr<const tls_client> tls);
  ~sentinel_locator();
  sentinel_locator(const sentinel_locator&) = delete;
  sentinel_locator& operator=(const sentinel_locator&) = delete;

  // Blocking: the master, asking the sentinels first if it is not known yet.
  endpoint master();
  // Non-blocking: the master if known; otherwise nothing, and the background asks.
  std::optional<endpoint> known_master();
  // The master failed a caller: ask the sentinels again (in the background).
  void lost();
  // Changes whenever the master named changes (the near tier's feed follows it).
  const std::atomic<std::uint64_t>& version() const noexcept { return version_; }

 private:
  struct watcher {
    std::mutex mutex;
    std::condition_variable cv;
    bool wanted = true;
    bool stopping = false;
    std::thread thread;
  };
  endpoint ask_sentinels();
  std::optional<endpoint> ask_one(const std::string& host, int port, std::string& why);
  bool is_master(const endpoint& m, std::string& why);
  void set_master(const endpoint& m);
  void ensure_watcher();
  void wake_watcher();
  void watcher_loop(watcher& w);
  std::unique_ptr<connection> subscribe();
  void listen(connection& sub, std::int64_t deadline_ms);

  void before_fork() noexcept override;
  void after_fork_parent() noexcept override;
  void after_fork_child() noexcept override;

  const backend_url url_;
  const backend_options options_;
  const std::shared_ptr<const tls_client> tls_;
  std::mutex mutex_;  // guards master_ and the last failure; never held across I/O
  std::optional<endpoint> master_;
  std::atomic<std::uint64_t> version_{1};  // bumped, under mutex_, when master_ names another node
  std::int64_t failed_at_ms_ = -1;  // when the last ask found no master (steady_ms), and why
  std::string failed_why_;
  std::atomic<bool> stopping_{false};  // the destructor's word to the watcher's loops
  std::unique_ptr<std::mutex> ask_mutex_ = std::make_unique<std::mutex>();  // one blocking ask at a time; across I/O
  std::mutex watcher_guard_;
  std::unique_ptr<watcher> watcher_;
  fork_registration registered_{*this};  // last: registered once the rest exists
};

}  // namespace httpcache::detail
