// SPDX-License-Identifier: MIT
// The non-blocking session of a store this process reaches without waiting (memory://, lmdb://):
// each request completes inside the call that starts it, through the store's blocking calls,
// with the same lease rules as a Redis session (lease_book). A store failure (a full or broken
// LMDB file) completes the request with errc::backend, as a lost Redis connection would.
#pragma once

#include <memory>

#include "backend.hpp"

namespace httpcache {

// The session borrows `store`, which must outlive it.
std::unique_ptr<async_session> make_immediate_session(backend& store);

}  // namespace httpcache
