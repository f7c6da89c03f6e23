// SPDX-License-Identifier: MIT
// One Redis server (redis:// and unix://) over hiredis, the store behind those URLs. hiredis stays
// inside core/redis/.
#pragma once

#include <memory>

#include "../backend.hpp"
#include "../url.hpp"

namespace httpcache {

std::unique_ptr<backend> make_redis_backend(const backend_url& url, const backend_options& options);

}  // namespace httpcache
