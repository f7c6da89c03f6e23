// SPDX-License-Identifier: MIT
// The HTTP response record codec of the C ABI.
#include <fmt/format.h>

#include "../core/error.hpp"
#include "../core/http_rules.hpp"
#include "../core/response_record.hpp"
#include "guard.hpp"
#include "handle.hpp"

struct httpcache_response {
  httpcache::response_record record;
};

using namespace httpcache::capi;
namespace core = httpcache;

namespace {

httpcache_slice slice_of(const std::string& s) { return httpcache_slice{s.data(), s.size()}; }

std::string_view view_of(const httpcache_slice& s, const char* what, std::size_t index) {
  if (!s.data && s.size) throw core::error(core::errc::invalid, fmt::format("{} {} is NULL", what, index));
  return s.size ? bytes(s.data, s.size) : std::string_view();
}

using header_vector = std::vector<std::pair<std::string, std::string>>;

// Entry `index` of one of a record's header lists, borrowed while the record lives.
int header_at(httpcache_header* out, const httpcache_response* response, header_vector core::response_record::*list,
              size_t index, const char* out_of_range) {
  if (reject_if(!out || !response, "out or response is NULL") || reject_if(index >= (response->record.*list).size(), out_of_range))
    return HTTPCACHE_EINVALID;
  const auto& [name, value] = (response->record.*list)[index];
  out->name = slice_of(name);
  out->value = slice_of(value);
  clear_error();
  return HTTPCACHE_OK;
}

}  // namespace

std::vector<std::pair<std::string_view, std::string_view>> httpcache::capi::header_views(const httpcache_header* headers,
                                                                                        size_t n) {
  core::header_list out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i)
    out.emplace_back(view_of(headers[i].name, "header name", i), view_of(headers[i].value, "header value", i));
  return out;
}

extern "C" {

int httpcache_response_encode(httpcache_buf* out, int status, const char* media_type, size_t media_type_len,
                              const httpcache_header* headers, size_t nheaders, const void* body, size_t body_len) {
  if (reject_if(!out, "out is NULL") || reject_if(!media_type && media_type_len, "media_type is NULL") ||
      reject_if(!headers && nheaders, "headers is NULL") || reject_if(!body && body_len, "body is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const auto hs = header_views(headers, nheaders);
    std::string record = core::encode_record(status, media_type_len ? bytes(media_type, media_type_len) : "", hs,
                                             body_len ? bytes(body, body_len) : std::string_view());
    fill_buf(out, record.data(), record.size());
  });
}

int httpcache_response_decode(httpcache_response** out, const void* data, size_t len) {
  if (reject_if(!out, "out is NULL")) return HTTPCACHE_EINVALID;
  *out = nullptr;
  if (reject_if(!data && len, "data is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    auto r = std::make_unique<httpcache_response>();
    r->record = core::decode_record(len ? bytes(data, len) : std::string_view());
    *out = r.release();
  });
}

int httpcache_response_encode_v2(httpcache_buf* out, int status, const char* media_type, size_t media_type_len,
                                 const httpcache_header* headers, size_t nheaders, const void* body, size_t body_len,
                                 int64_t stored_at_unix_ms, const httpcache_header* vary, size_t nvary) {
  if (reject_if(!out, "out is NULL") || reject_if(!media_type && media_type_len, "media_type is NULL") ||
      reject_if(!headers && nheaders, "headers is NULL") || reject_if(!body && body_len, "body is NULL") ||
      reject_if(!vary && nvary, "vary is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const auto hs = header_views(headers, nheaders);
    const auto vs = header_views(vary, nvary);
    std::string record = core::encode_record_v2(status, media_type_len ? bytes(media_type, media_type_len) : "", hs,
                                                body_len ? bytes(body, body_len) : std::string_view(),
                                                stored_at_unix_ms, vs);
    fill_buf(out, record.data(), record.size());
  });
}

int httpcache_response_version(const httpcache_response* response) { return response ? response->record.version : 0; }

int64_t httpcache_response_stored_at(const httpcache_response* response) {
  return response ? response->record.stored_at_ms : 0;
}

size_t httpcache_response_vary_count(const httpcache_response* response) {
  return response ? response->record.vary.size() : 0;
}

int httpcache_response_vary(httpcache_header* out, const httpcache_response* response, size_t index) {
  return header_at(out, response, &core::response_record::vary, index, "vary index out of range");
}

int httpcache_http_strong_etag(httpcache_buf* out, const void* body, size_t len) {
  if (reject_if(!out || (!body && len), "out or body is NULL")) return HTTPCACHE_EINVALID;
  return guard([&] {
    const std::string tag = core::strong_etag(len ? bytes(body, len) : std::string_view());
    fill_buf(out, tag.data(), tag.size());
  });
}

int httpcache_http_not_modified(int* out, const httpcache_response* response, const httpcache_header* request_headers,
                                size_t nheaders) {
  if (reject_if(!out || !response, "out or response is NULL") ||
      reject_if(!request_headers && nheaders, "request_headers is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const auto hs = header_views(request_headers, nheaders);
    *out = core::http::not_modified(response->record, hs) ? 1 : 0;
  });
}

int httpcache_http_not_modified_by(int* out, const char* etag, size_t etag_len, const char* last_modified,
                                   size_t last_modified_len, int64_t stored_at_unix_ms,
                                   const httpcache_header* request_headers, size_t nheaders) {
  if (reject_if(!out, "out is NULL") || reject_if(!request_headers && nheaders, "request_headers is NULL"))
    return HTTPCACHE_EINVALID;
  return guard([&] {
    const auto hs = header_views(request_headers, nheaders);
    std::optional<std::string_view> e, lm;
    if (etag) e = bytes(etag, etag_len);
    if (last_modified) lm = bytes(last_modified, last_modified_len);
    *out = core::http::not_modified(e, lm, stored_at_unix_ms, hs) ? 1 : 0;
  });
}

void httpcache_response_free(httpcache_response* response) { delete response; }

int httpcache_response_status(const httpcache_response* response) { return response ? response->record.status : 0; }

httpcache_slice httpcache_response_media_type(const httpcache_response* response) {
  return response ? slice_of(response->record.media_type) : httpcache_slice{nullptr, 0};
}

httpcache_slice httpcache_response_body(const httpcache_response* response) {
  return response ? slice_of(response->record.body) : httpcache_slice{nullptr, 0};
}

size_t httpcache_response_header_count(const httpcache_response* response) {
  return response ? response->record.headers.size() : 0;
}

int httpcache_response_header(httpcache_header* out, const httpcache_response* response, size_t index) {
  return header_at(out, response, &core::response_record::headers, index, "header index out of range");
}

}  // extern "C"
