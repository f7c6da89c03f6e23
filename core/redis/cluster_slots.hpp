// SPDX-License-Identifier: MIT
// Where a key lives in a Redis Cluster: CRC16 key slots with {hash tags}, the slot map read from
// CLUSTER SLOTS (with a blocking pool per node), and the MOVED/ASK replies that correct it. Shared
// by the blocking backend and the non-blocking session, so both route keys the same way.
#pragma once

#include <hiredis/hiredis.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../backend.hpp"
#include "../url.hpp"
#include "../fork.hpp"
#include "pool.hpp"

namespace httpcache {

// The cluster slot of a key (0..16383): CRC16-XMODEM of the key, or of its {hash tag} when the
// key has a non-empty one.
std::uint16_t cluster_key_slot(std::string_view key);

}  // namespace httpcache

namespace httpcache::detail {

class tls_client;

constexpr int cluster_slot_count = 16384;

struct redirect {
  enum class kind { none, moved, ask } what = kind::none;
  int slot = 0;
  std::string host;
  int port = 0;
};

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" (an empty host means "the same host").
redirect parse_redirect_text(std::string_view text, const std::string& current_host);
redirect parse_redirect(const redisReply* r, const std::string& current_host);

// The slot owners and one blocking pool per known node. Thread-safe. Nodes are only ever added,
// so a node index and a pool reference stay valid for the map's lifetime. Fork-safe (fork.hpp):
// the map's lock is held across fork(), and a child starts its own refresher thread when needed.
class slot_map final : private fork_participant {
 public:
  slot_map(backend_url url, backend_options options);
  ~slot_map();  // stops the background refresher
  slot_map(const slot_map&) = delete;
  slot_map& operator=(const slot_map&) = delete;

  // Blocking: the node owning `slot`, fetching the map first if the slot has no known owner.
  int owner_of(std::uint16_t slot);
  redis_pool& pool(int node);
  int node_index(const std::string& host, int port);
  // Asks the known nodes, one after the other, for CLUSTER SLOTS and installs the first answer.
  void refresh_map();

  // For non-blocking sessions, which must never wait on I/O: the owner of a slot if the map
  // knows it (no fetching), and a refresh done by a background thread.
  std::optional<endpoint> known_owner(std::uint16_t slot);
  void request_refresh();
  // Asks for the map in the background if it is still unknown (a non-blocking session opening
  // must not wait for it: until it arrives, requests fail open).
  void prefetch_map();

  void note_moved(int slot, const std::string& host, int port);
  // An ASK sent a request to `node`, which imports a slot: until it owns slots (or the map is
  // read again) it counts among the owners, as its keys are read there.
  void note_asked(int node);
  // The masters that own slots now (and the nodes ASK sent requests to), and a version that
  // changes whenever that set changes (the near tier's feed links to each of them); nothing
  // while the map is unknown.
  std::optional<std::pair<std::uint64_t, std::vector<endpoint>>> owners();
  const std::atomic<std::uint64_t>& owners_version() const noexcept { return owners_version_; }
  const backend_url& url() const { return url_; }
  const std::shared_ptr<const tls_client>& tls() const { return tls_; }
  const backend_options& options() const { return options_; }

 private:
  // The background refresher: its thread and what it waits on. One per process: a forked child
  // does not have the thread (see after_fork_child).
  struct refresher {
    std::mutex mutex;
    std::condition_variable cv;
    bool wanted = false;
    bool stopping = false;
    std::thread thread;
  };
  void refresher_loop(refresher& r);
  void install_map(const redisReply* reply, const std::string& answering_host);
  void note_owners_locked();

  void before_fork() noexcept override;
  void after_fork_parent() noexcept override;
  void after_fork_child() noexcept override;

  const backend_url url_;
  const backend_options options_;
  const std::shared_ptr<const tls_client> tls_;  // null: plain
  std::shared_mutex map_mutex_;
  std::array<int, cluster_slot_count> slot_owner_;
  std::vector<std::unique_ptr<redis_pool>> nodes_;
  std::map<std::string, int> index_;
  std::vector<int> owner_set_;                    // the distinct owners in slot_owner_, sorted
  std::vector<int> asked_;                        // nodes ASK sent requests to, not owners (yet)
  std::atomic<std::uint64_t> owners_version_{1};  // bumped, under map_mutex_, when owner_set_ changes
  // One refresh at a time. Held across I/O, so not across fork(): a child replaces it instead (a
  // thread of the parent may have held it).
  std::unique_ptr<std::mutex> refresh_mutex_ = std::make_unique<std::mutex>();
  std::mutex refresher_guard_;  // guards refresher_ itself (made on first use)
  std::unique_ptr<refresher> refresher_;
  fork_registration registered_{*this};  // last: registered once the rest exists
};

}  // namespace httpcache::detail
