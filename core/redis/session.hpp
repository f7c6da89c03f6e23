// SPDX-License-Identifier: MIT
// Non-blocking Redis access for host event loops, over hiredis's async API with our own adapter:
// instead of binding to one loop library, it reports the events it needs through a watch_fn.
#pragma once

#include <memory>

#include "../backend.hpp"
#include "../url.hpp"

namespace httpcache {

// Called with the text of every error reply; returns true when the error means "ask another node"
// (a cluster's MOVED/ASK): the request then fails with errc::backend instead of reading as a miss.
using error_reply_fn = std::function<bool(std::string_view error_text)>;

// One connection to one node: url's host/port or socket path, its credentials and db.
std::unique_ptr<async_session> make_redis_session(const backend_url& url, const backend_options& options,
                                                  watch_fn watch, error_reply_fn on_error_reply = nullptr);

}  // namespace httpcache
