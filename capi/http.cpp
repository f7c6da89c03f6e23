// SPDX-License-Identifier: MIT
// The HTTP storage rules of the C ABI (core/http_rules.hpp).
#include <cstring>

#include "../core/http_rules.hpp"
#include "guard.hpp"
#include "handle.hpp"

using namespace httpcache::capi;
namespace http = httpcache::http;

namespace {

constexpr unsigned known_flags = HTTPCACHE_HTTP_PER_USER;

// Views of C slices; a NULL pointer with a size throws error(errc::invalid).
std::vector<std::string_view> slice_views(const httpcache_slice* slices, size_t n) {
  std::vector<std::string_view> views;
  for (size_t i = 0; i < n; ++i) {
    if (!slices[i].data && slices[i].size) throw httpcache::error(httpcache::errc::invalid, "a varied name is NULL");
    views.emplace_back(slices[i].data ? static_cast<const char*>(slices[i].data) : "", slices[i].size);
  }
  return views;
}

}  // namespace

extern "C" {

int httpcache_http_judge(httpcache_http_verdict* out, int status, const httpcache_header* headers, size_t nheaders,
                         unsigned flags, int64_t now_unix_s) {
  return httpcache_http_judge_varied(out, status, headers, nheaders, flags, now_unix_s, nullptr, 0);
}

int httpcache_http_judge_varied(httpcache_http_verdict* out, int status, const httpcache_header* headers,
                                size_t nheaders, unsigned flags, int64_t now_unix_s, const httpcache_slice* varied,
                                size_t nvaried) {
  if (reject_if(!out, "out is NULL") || reject_if(!headers && nheaders, "headers is NULL") ||
      reject_if(!varied && nvaried, "varied is NULL") || reject_if(flags & ~known_flags, "unknown flags"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const auto v = http::judge(status, header_views(headers, nheaders), (flags & HTTPCACHE_HTTP_PER_USER) != 0,
                               now_unix_s, slice_views(varied, nvaried));
    out->storable = v.refused.empty() ? 1 : 0;
    out->lifetime_s = v.cap ? *v.cap : -1;
    const std::size_t n = std::min(v.refused.size(), sizeof out->reason - 1);
    std::memcpy(out->reason, v.refused.data(), n);
    out->reason[n] = '\0';
  });
}

int httpcache_http_variant(httpcache_buf* out, const httpcache_header* request_headers, size_t nheaders,
                           const httpcache_slice* varied, size_t nvaried) {
  if (reject_if(!out, "out is NULL") || reject_if(!request_headers && nheaders, "request_headers is NULL") ||
      reject_if(!varied && nvaried, "varied is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const std::string v = http::variant(header_views(request_headers, nheaders), slice_views(varied, nvaried));
    fill_buf(out, v.data(), v.size());
  });
}

int httpcache_http_cache_control(httpcache_buf* out, int64_t max_age_s, unsigned flags, const char* handler,
                                 size_t handler_len) {
  if (reject_if(!out, "out is NULL") || reject_if(flags & ~known_flags, "unknown flags")) return HTTPCACHE_EINVALID;
  return guard([&] {
    std::optional<std::string_view> h;
    if (handler) h = handler_len ? bytes(handler, handler_len) : std::string_view();
    const std::string value = http::cache_control_for(max_age_s, (flags & HTTPCACHE_HTTP_PER_USER) != 0, h);
    fill_buf(out, value.data(), value.size());
  });
}

int httpcache_http_stale(int64_t* while_revalidate_s, int64_t* if_error_s, const httpcache_header* headers,
                         size_t nheaders) {
  if (reject_if(!while_revalidate_s || !if_error_s, "an out pointer is NULL") || reject_if(!headers && nheaders, "headers is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const auto d = http::read_stale(header_views(headers, nheaders));
    *while_revalidate_s = d.while_revalidate.value_or(-1);
    *if_error_s = d.if_error.value_or(-1);
  });
}

int httpcache_http_request_flags(unsigned* out, const httpcache_header* headers, size_t nheaders) {
  if (reject_if(!out || (!headers && nheaders), "out or headers is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    const auto d = http::read_request(header_views(headers, nheaders));
    *out = (d.no_store ? HTTPCACHE_HTTP_REQUEST_NO_STORE : 0u) | (d.no_cache ? HTTPCACHE_HTTP_REQUEST_NO_CACHE : 0u);
  });
}

int httpcache_http_date_parse(int64_t* out, const char* text, size_t len) {
  if (reject_if(!out || (!text && len), "out or text is NULL")) return HTTPCACHE_EINVALID;
  const auto when = http::parse_http_date(len ? bytes(text, len) : std::string_view());
  if (reject_if(!when, "not an HTTP-date")) return HTTPCACHE_EINVALID;
  *out = *when;
  clear_error();
  return HTTPCACHE_OK;
}

}  // extern "C"
