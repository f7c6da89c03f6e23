// SPDX-License-Identifier: MIT
// Redis Cluster (redis+cluster://): CRC16 key slots with {hash tags}, the slot map from
// CLUSTER SLOTS, a connection pool per node, MOVED and ASK redirections.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "backend.hpp"
#include "url.hpp"

namespace httpcache {

// The cluster slot of a key (0..16383): CRC16-XMODEM of the key, or of its {hash tag} when the
// key has a non-empty one.
std::uint16_t cluster_key_slot(std::string_view key);

std::unique_ptr<backend> make_redis_cluster_backend(const backend_url& url, const backend_options& options);

}  // namespace httpcache
