// SPDX-License-Identifier: MIT
// The same check from C++: the header is C++-clean and links from a C++ program.
#include <httpcache.h>

#include <cstdio>
#include <string>

int main() {
  httpcache_cache* cache = nullptr;
  if (httpcache_cache_open(&cache, "memory://", "consumer", "UTC", nullptr) != HTTPCACHE_OK) return 2;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, nullptr, nullptr};
  std::string v = "from-c++";
  if (httpcache_cache_set(nullptr, cache, "k", 1, v.data(), v.size(), &policy) != HTTPCACHE_OK) return 3;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  if (httpcache_cache_get(&value, nullptr, cache, "k", 1) != HTTPCACHE_OK) return 4;
  bool same = std::string(value.ptr, value.size) == v;
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
  std::printf("c++ consumer ok\n");
  return same ? 0 : 5;
}
