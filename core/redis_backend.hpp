// SPDX-License-Identifier: MIT
// Redis (redis:// and unix://) over hiredis. hiredis stays inside core/redis_*.cpp.
#pragma once

#include <memory>

#include "backend.hpp"
#include "url.hpp"

namespace httpcache {

std::unique_ptr<backend> make_redis_backend(const backend_url& url, const backend_options& options);

}  // namespace httpcache
