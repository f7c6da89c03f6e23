// SPDX-License-Identifier: MIT
// Internal to core/redis/: the invalidation feed of a Redis store (backend::watch), for the near
// tier. One thread per feed keeps one link per node that holds keys (the server, Sentinel's
// master, every master of a cluster). A link is a connection of its own that asks for CLIENT ID,
// turns on CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <each prefix>, and SUBSCRIBEs to
// __redis__:invalidate: the RESP2 form of server-assisted client-side caching, which hiredis 0.14
// reads. BCAST, not the default mode: the server then reports every change under the prefixes,
// whoever read the key, so the pool's and the sessions' connections need no tracking of their own
// (which they would have to turn on again after every reconnect, and which costs the server a
// table of every key every client read).
//
// The feed covers the store while every link is subscribed for the nodes the store uses now (their
// version, see targets). It stops covering, and tells the sink to drop everything, when a link
// fails, a PING is not answered within the command timeout, the nodes change, or the server
// reports a FLUSHDB/FLUSHALL (a null message); it then connects again (backing off up to 1 s).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../backend.hpp"
#include "../url.hpp"
#include "connection.hpp"

struct redisReply;

namespace httpcache::detail {

class tls_client;

// The nodes that hold the store's keys now, and a number that changes whenever they change: the
// same number the store's `topology` counter holds then.
struct watch_targets {
  std::uint64_t version = 0;
  std::vector<endpoint> nodes;
};
// Nothing when the nodes are not known yet (a Sentinel master or a cluster map still being asked).
using targets_fn = std::function<std::optional<watch_targets>()>;

// `auth` gives the user, password and db of each link (and, with `shown`, names the server in
// nothing: links fail silently, the store's own calls report). `tls` (null: plain) and `topology`
// (null: the nodes never change) must outlive the feed.
std::unique_ptr<invalidation_feed> make_tracking_feed(const backend_url& auth, const backend_options& options,
                                                      const tls_client* tls, targets_fn targets,
                                                      const std::atomic<std::uint64_t>* topology,
                                                      std::vector<std::string> prefixes, invalidation_sink& sink);

// What a subscribed link heard, told to `sink` as it goes: changed keys (each one), everything
// changed (a null list: FLUSHDB/FLUSHALL), the answer to its PING, or something else (ignored).
enum class report { pong, keys, flush, other };
report read_report(const redisReply* r, invalidation_sink& sink);

}  // namespace httpcache::detail
