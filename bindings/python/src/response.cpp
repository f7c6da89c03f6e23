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

}  // namespace

void init_response(py::module_& m) {
  m.def(
      "response_encode",
      [](int status, std::optional<std::string> media_type, const std::vector<std::pair<std::string, std::string>>& headers,
         const py::bytes& body) {
        std::vector<httpcache_header> hs;
        hs.reserve(headers.size());
        for (const auto& [name, value] : headers)
          hs.push_back(httpcache_header{{name.data(), name.size()}, {value.data(), value.size()}});
        std::string_view b = body;
        const std::string mt = media_type ? *media_type : std::string();
        owned_buf out;
        int rc = httpcache_response_encode(&out.buf, status, mt.data(), mt.size(), hs.data(), hs.size(), b.data(),
                                           b.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out.to_bytes();
      },
      py::arg("status"), py::arg("media_type"), py::arg("headers"), py::arg("body"),
      "The record of a response (bytes). headers: (name, value) pairs of bytes. ValueError for a "
      "status outside 100..999, a name that is not a token, CR/LF/NUL in a value, > 256 headers.");
  m.def(
      "response_decode",
      [](const py::bytes& data) {
        std::string_view d = data;
        httpcache_response* raw = nullptr;
        int rc = httpcache_response_decode(&raw, d.data(), d.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        std::unique_ptr<httpcache_response, decltype(&httpcache_response_free)> r(raw, &httpcache_response_free);
        size_t n = httpcache_response_header_count(r.get());
        py::list headers(n);
        for (size_t i = 0; i < n; ++i) {
          httpcache_header h{};
          rc = httpcache_response_header(&h, r.get(), i);
          if (rc != HTTPCACHE_OK) raise_for(rc);
          headers[i] = py::make_tuple(slice_bytes(h.name), slice_bytes(h.value));
        }
        return py::make_tuple(httpcache_response_status(r.get()), slice_bytes(httpcache_response_media_type(r.get())),
                              std::move(headers), slice_bytes(httpcache_response_body(r.get())));
      },
      py::arg("data"),
      "(status, media_type bytes, [(name, value) bytes pairs], body) of a record. ValueError for "
      "anything that is not a well-formed record (treat it as a cache miss).");
}

}  // namespace httpcache_py
