// SPDX-License-Identifier: MIT
// Redis Cluster (redis+cluster://), the store behind that URL: blocking calls routed by the slot
// map and following MOVED and ASK, and non-blocking sessions from cluster_session.
#pragma once

#include <memory>

#include "../backend.hpp"
#include "../url.hpp"

namespace httpcache {

std::unique_ptr<backend> make_redis_cluster_backend(const backend_url& url, const backend_options& options);

}  // namespace httpcache
