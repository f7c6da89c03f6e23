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
//
// Version 2 (since library 1.3) adds what HTTP validation and Age need; version 1 stays readable:
//
//   HTTPCACHE-RESPONSE 2\n                                  magic and version
//   <status> <header count> <stored-at> <vary count>\n      stored-at: Unix milliseconds
//   <media type>\n
//   <name>: <value>\n                                      headers (an ETag always among them)
//   <name>: <value>\n                                      the request's values of the Vary headers
//   <body>
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace httpcache {

// An HTTP token (RFC 9110 section 5.6.2) of 1..256 bytes: what a header name must be.
bool is_token(std::string_view s);

inline constexpr std::string_view record_magic = "HTTPCACHE-RESPONSE 1\n";
inline constexpr std::string_view record_magic_v2 = "HTTPCACHE-RESPONSE 2\n";
inline constexpr std::size_t max_record_headers = 256;

using header_list = std::vector<std::pair<std::string_view, std::string_view>>;

struct response_record {
  int version = 1;
  int status = 200;
  std::string media_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::int64_t stored_at_ms = 0;  // version 2: Unix milliseconds when it was stored; 0 in version 1
  std::vector<std::pair<std::string, std::string>> vary;  // version 2: the request's values of the Vary headers
};

// Throws error(errc::invalid) for a field the format cannot carry (bad status, name or value).
std::string encode_record(int status, std::string_view media_type, const header_list& headers, std::string_view body);

// Version 2 (see include/httpcache.h): adds the stored-at time and the Vary request values, and
// a strong ETag (strong_etag of the body) when the headers have none.
std::string encode_record_v2(int status, std::string_view media_type, const header_list& headers,
                             std::string_view body, std::int64_t stored_at_ms, const header_list& vary);

// Throws error(errc::invalid) for anything that is not a well-formed version-1 or -2 record.
response_record decode_record(std::string_view data);

// The strong ETag of a body: the first 128 bits of its SHA-256 in lower-case hex, quoted
// ("\"3a7bd3e2...\""): the same bytes give the same tag in every process and language.
std::string strong_etag(std::string_view body);

}  // namespace httpcache
