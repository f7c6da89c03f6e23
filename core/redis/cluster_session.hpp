// SPDX-License-Identifier: MIT
// The non-blocking session of a Redis Cluster: one non-blocking session per node behind a single
// epoll descriptor, so the host loop watches one fd for a cluster as for one server.
#pragma once

#include <memory>

#include "../backend.hpp"
#include "cluster_slots.hpp"

namespace httpcache {

// `map` must outlive the session (the backend owning it outlives every session it opened).
std::unique_ptr<async_session> make_cluster_session(detail::slot_map& map, watch_fn watch);

}  // namespace httpcache
