// SPDX-License-Identifier: MIT
// Non-blocking Redis access for host event loops, over our own transport (connection.hpp):
// instead of binding to one loop library, it reports the events it needs through a watch_fn.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "../backend.hpp"
#include "../url.hpp"
#include "connection.hpp"

namespace httpcache {

namespace detail {
class tls_client;
}

// Called with the text of every error reply; returns true when the error means "ask another node"
// (a cluster's MOVED/ASK): the request then fails with errc::backend instead of reading as a miss.
using error_reply_fn = std::function<bool(std::string_view error_text)>;

// What a session connects to, beyond the URL's credentials and db.
struct session_target {
  std::shared_ptr<const detail::tls_client> tls;  // null: plain TCP or unix socket
  // Where to connect now; null: the URL's host and port, or its socket. Nothing while the place
  // is being looked up (a Sentinel master not known yet): requests then wait, without blocking,
  // until it is known (the host's timer drives process()) or their deadline passes.
  std::function<std::optional<detail::endpoint>()> locate;
  // Told when a connection fails or a node answers READONLY (no master any more): a Sentinel
  // backend asks its sentinels again.
  std::function<void()> lost;
  error_reply_fn on_error_reply;
};

// One connection at a time to one node: the URL's (or locate()'s), with its credentials and db.
std::unique_ptr<async_session> make_redis_session(const backend_url& url, const backend_options& options,
                                                  watch_fn watch, session_target target = {});

}  // namespace httpcache
