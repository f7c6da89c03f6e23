// SPDX-License-Identifier: MIT
// HTTP response records (httpcache_response_*): the core's one record format, so that a response
// cached by Python can be served by a C program and the other way round.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "binding.hpp"

namespace httpcache_py {

namespace {

py::bytes slice_bytes(httpcache_slice s) {
  return py::bytes(static_cast<const char*>(s.data ? s.data : ""), s.size);
}

using header_pairs = std::vector<std::pair<std::string, std::string>>;

// One of a decoded record's header lists as [(name, value)] bytes pairs.
py::list pairs_of(const httpcache_response* r, size_t (*count)(const httpcache_response*),
                  int (*get)(httpcache_header*, const httpcache_response*, size_t)) {
  const size_t n = count(r);
  py::list out(n);
  for (size_t i = 0; i < n; ++i) {
    httpcache_header h{};
    int rc = get(&h, r, i);
    if (rc != HTTPCACHE_OK) raise_for(rc);
    out[i] = py::make_tuple(slice_bytes(h.name), slice_bytes(h.value));
  }
  return out;
}

// Borrowed views of (name, value) pairs, valid while `pairs` lives.
std::vector<httpcache_header> c_headers(const header_pairs& pairs) {
  std::vector<httpcache_header> out;
  out.reserve(pairs.size());
  for (const auto& [name, value] : pairs)
    out.push_back(httpcache_header{{name.data(), name.size()}, {value.data(), value.size()}});
  return out;
}

std::vector<httpcache_slice> c_slices(const std::vector<std::string>& items) {
  std::vector<httpcache_slice> out;
  out.reserve(items.size());
  for (const auto& s : items) out.push_back(httpcache_slice{s.data(), s.size()});
  return out;
}

}  // namespace

void init_response(py::module_& m) {
  m.def(
      "response_encode",
      [](int status, std::optional<std::string> media_type, const header_pairs& headers, const py::bytes& body,
         std::optional<int64_t> stored_at, const header_pairs& vary) {
        auto hs = c_headers(headers);
        auto vs = c_headers(vary);
        std::string_view b = body;
        const std::string mt = media_type ? *media_type : std::string();
        owned_buf out;
        int rc = stored_at ? httpcache_response_encode_v2(&out.buf, status, mt.data(), mt.size(), hs.data(), hs.size(),
                                                          b.data(), b.size(), *stored_at, vs.data(), vs.size())
                           : httpcache_response_encode(&out.buf, status, mt.data(), mt.size(), hs.data(), hs.size(),
                                                       b.data(), b.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out.to_bytes();
      },
      py::arg("status"), py::arg("media_type"), py::arg("headers"), py::arg("body"), py::arg("stored_at") = py::none(),
      py::arg("vary") = header_pairs{},
      "The record of a response (bytes): version 2 when stored_at (Unix milliseconds) is given, with the "
      "request's Vary values and a strong ETag added when headers have none; else version 1. "
      "headers: (name, value) pairs of bytes. ValueError for a status outside 100..999, a name "
      "that is not a token, CR/LF/NUL in a value, > 256 headers.");
  m.attr("HTTP_REQUEST_NO_STORE") = HTTPCACHE_HTTP_REQUEST_NO_STORE;
  m.attr("HTTP_REQUEST_NO_CACHE") = HTTPCACHE_HTTP_REQUEST_NO_CACHE;
  m.def(
      "http_request_flags",
      [](const header_pairs& headers) {
        auto hs = c_headers(headers);
        unsigned out = 0;
        int rc = httpcache_http_request_flags(&out, hs.data(), hs.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out;
      },
      py::arg("headers"), "HTTP_REQUEST_NO_STORE | HTTP_REQUEST_NO_CACHE of a request's headers.");
  m.def(
      "http_strong_etag",
      [](const py::bytes& body) {
        std::string_view b = body;
        owned_buf out;
        int rc = httpcache_http_strong_etag(&out.buf, b.data(), b.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out.to_bytes();
      },
      py::arg("body"), "The strong ETag (bytes, quoted) of a body: SHA-256, first 128 bits in hex.");
  m.def(
      "http_not_modified_by",
      [](std::optional<std::string> etag, std::optional<std::string> last_modified, int64_t stored_at_ms,
         const header_pairs& request_headers) {
        auto hs = c_headers(request_headers);
        int out = 0;
        int rc = httpcache_http_not_modified_by(&out, etag ? etag->data() : nullptr, etag ? etag->size() : 0,
                                                last_modified ? last_modified->data() : nullptr,
                                                last_modified ? last_modified->size() : 0, stored_at_ms, hs.data(),
                                                hs.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out == 1;
      },
      py::arg("etag"), py::arg("last_modified"), py::arg("stored_at_ms"), py::arg("request_headers"),
      "httpcache_http_not_modified_by: the 304 question from a response's validators alone.");
  m.def(
      "http_not_modified",
      [](const py::bytes& record, const header_pairs& request_headers) {
        std::string_view d = record;
        httpcache_response* raw = nullptr;
        int rc = httpcache_response_decode(&raw, d.data(), d.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        std::unique_ptr<httpcache_response, decltype(&httpcache_response_free)> r(raw, &httpcache_response_free);
        auto hs = c_headers(request_headers);
        int out = 0;
        rc = httpcache_http_not_modified(&out, r.get(), hs.data(), hs.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out == 1;
      },
      py::arg("record"), py::arg("request_headers"),
      "Whether a GET/HEAD request's If-None-Match / If-Modified-Since make the stored response's "
      "answer a 304 (httpcache_http_not_modified). ValueError for a record that does not decode.");
  m.def(
      "response_decode",
      [](const py::bytes& data, bool full) -> py::tuple {
        std::string_view d = data;
        httpcache_response* raw = nullptr;
        int rc = httpcache_response_decode(&raw, d.data(), d.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        std::unique_ptr<httpcache_response, decltype(&httpcache_response_free)> r(raw, &httpcache_response_free);
        py::list headers = pairs_of(r.get(), httpcache_response_header_count, httpcache_response_header);
        if (!full)
          return py::make_tuple(httpcache_response_status(r.get()), slice_bytes(httpcache_response_media_type(r.get())),
                                std::move(headers), slice_bytes(httpcache_response_body(r.get())));
        py::list vary = pairs_of(r.get(), httpcache_response_vary_count, httpcache_response_vary);
        return py::make_tuple(httpcache_response_status(r.get()), slice_bytes(httpcache_response_media_type(r.get())),
                              std::move(headers), slice_bytes(httpcache_response_body(r.get())),
                              httpcache_response_stored_at(r.get()), std::move(vary));
      },
      py::arg("data"), py::arg("full") = false,
      "(status, media_type bytes, [(name, value) bytes pairs], body) of a record, plus (stored_at, "
      "[Vary request values]) with full=True (stored_at 0 for version 1). ValueError for anything "
      "that is not a well-formed record (treat it as a cache miss).");
  m.attr("HTTP_PER_USER") = HTTPCACHE_HTTP_PER_USER;
  m.def(
      "http_judge",
      [](int status, const header_pairs& headers, bool per_user, int64_t now, const std::vector<std::string>& varied) {
        auto hs = c_headers(headers);
        auto vs = c_slices(varied);
        httpcache_http_verdict v{};
        int rc = httpcache_http_judge_varied(&v, status, hs.data(), hs.size(), per_user ? HTTPCACHE_HTTP_PER_USER : 0u,
                                             now, vs.data(), vs.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return py::make_tuple(v.storable ? py::none() : py::object(py::str(v.reason)),
                              v.lifetime_s < 0 ? py::none() : py::object(py::int_(v.lifetime_s)));
      },
      py::arg("status"), py::arg("headers"), py::arg("per_user"), py::arg("now"),
      py::arg("varied") = std::vector<std::string>(),
      "(why it may not be stored or None, the seconds of freshness its handler allows or None) of a "
      "response (httpcache_http_judge). headers: (name, value) pairs of bytes, any case.");
  m.def(
      "http_variant",
      [](const header_pairs& request_headers, const std::vector<std::string>& varied) {
        auto hs = c_headers(request_headers);
        auto vs = c_slices(varied);
        owned_buf out;
        int rc = httpcache_http_variant(&out.buf, hs.data(), hs.size(), vs.data(), vs.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out.to_bytes();
      },
      py::arg("request_headers"), py::arg("varied"),
      "The bytes telling a request's variant apart, for its key (httpcache_http_variant).");
  m.def(
      "http_stale",
      [](const header_pairs& headers) {
        auto hs = c_headers(headers);
        int64_t swr = -1, sie = -1;
        int rc = httpcache_http_stale(&swr, &sie, hs.data(), hs.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return py::make_tuple(swr < 0 ? py::none() : py::object(py::int_(swr)), sie < 0 ? py::none() : py::object(py::int_(sie)));
      },
      py::arg("headers"),
      "(stale-while-revalidate seconds or None, stale-if-error seconds or None) a response's own "
      "Cache-Control allows (httpcache_http_stale).");
  m.def(
      "http_cache_control",
      [](int64_t max_age, bool per_user, std::optional<std::string> handler) {
        owned_buf out;
        int rc = httpcache_http_cache_control(&out.buf, max_age, per_user ? HTTPCACHE_HTTP_PER_USER : 0u,
                                              handler ? handler->data() : nullptr, handler ? handler->size() : 0);
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out.to_bytes();
      },
      py::arg("max_age"), py::arg("per_user"), py::arg("handler"),
      "The Cache-Control (bytes) a stored response is sent with (httpcache_http_cache_control).");
}

}  // namespace httpcache_py
