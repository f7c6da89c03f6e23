// SPDX-License-Identifier: MIT
// The one record format for cached HTTP responses, shared by every language through the C ABI.
// Version 1, line-oriented so that any language reads it with a few splits at '\n':
//
//   HTTPCACHE-RESPONSE 1\n        magic and version
//   <status> <header count>\n     decimal; status 100..999, count 0..max_record_headers
//   <media type>\n                may be empty
//   <name>: <value>\n             one line per header, in order
//   <body>                        every byte up to the end, verbatim
//
// Header names are 1..256 bytes of HTTP token characters; media types and values may not contain
// CR, LF or NUL (HTTP forbids them anyway), which is what keeps the line layout unambiguous.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace httpcache {

inline constexpr std::string_view record_magic = "HTTPCACHE-RESPONSE 1\n";
inline constexpr std::size_t max_record_headers = 256;

struct response_record {
  int status = 200;
  std::string media_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Throws error(errc::invalid) for a field the format cannot carry (bad status, name or value).
std::string encode_record(int status, std::string_view media_type,
                          const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                          std::string_view body);

// Throws error(errc::invalid) for anything that is not a well-formed version-1 record.
response_record decode_record(std::string_view data);

}  // namespace httpcache
