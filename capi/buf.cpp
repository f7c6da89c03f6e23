// SPDX-License-Identifier: MIT
// httpcache_buf: library-allocated bytes that the caller owns (malloc/free on our side only).
#include <cstdlib>
#include <cstring>
#include <new>

#include "guard.hpp"

namespace httpcache::capi {

void fill_buf(httpcache_buf* out, const char* data, size_t size) {
  char* p = static_cast<char*>(std::malloc(size + 1));
  if (!p) throw std::bad_alloc();
  if (size) std::memcpy(p, data, size);
  p[size] = '\0';
  std::free(out->ptr);
  out->ptr = p;
  out->size = size;
}

}  // namespace httpcache::capi

using namespace httpcache::capi;

extern "C" {

void httpcache_buf_dispose(httpcache_buf* buf) {
  if (!buf) return;
  std::free(buf->ptr);
  buf->ptr = nullptr;
  buf->size = 0;
}

int httpcache_buf_set(httpcache_buf* buf, const void* data, size_t size) {
  if (reject_if(!buf, "buf is NULL") || reject_if(!data && size, "data is NULL but size is not 0"))
    return HTTPCACHE_EINVALID;
  return guard([&] { fill_buf(buf, static_cast<const char*>(data), size); });
}

}  // extern "C"
