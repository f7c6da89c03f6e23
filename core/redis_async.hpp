// SPDX-License-Identifier: MIT
// Non-blocking Redis access for host event loops, over hiredis's async API with our own adapter:
// instead of binding to one loop library, it reports the events it needs through a watch_fn.
#pragma once

#include <memory>

#include "backend.hpp"
#include "url.hpp"

namespace httpcache {

std::unique_ptr<async_session> make_redis_session(const backend_url& url, const backend_options& options,
                                                  watch_fn watch);

}  // namespace httpcache
