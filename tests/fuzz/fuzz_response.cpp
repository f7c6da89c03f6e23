// SPDX-License-Identifier: MIT
// libFuzzer target: the stored response decoder. Any bytes under our key (a foreign writer, a
// corrupted value) must decode or be refused with errc::invalid; what decodes (version 1 or 2)
// must re-encode to a record that decodes to the same fields.
#include <cstdlib>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/response_record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  httpcache::response_record r;
  try {
    r = httpcache::decode_record(input);
  } catch (const httpcache::error& e) {
    if (e.code() != httpcache::errc::invalid) std::abort();
    return 0;
  }
  httpcache::header_list headers(r.headers.begin(), r.headers.end());
  if (r.version == 1) {
    std::string again = httpcache::encode_record(r.status, r.media_type, headers, r.body);  // must not throw
    httpcache::response_record back = httpcache::decode_record(again);
    if (back.status != r.status || back.media_type != r.media_type || back.headers != r.headers || back.body != r.body)
      std::abort();
    return 0;
  }
  // Version 2: the same fields back, plus the strong ETag the encoder adds when there was none.
  httpcache::header_list vary(r.vary.begin(), r.vary.end());
  std::string again = httpcache::encode_record_v2(r.status, r.media_type, headers, r.body, r.stored_at_ms, vary);
  httpcache::response_record back = httpcache::decode_record(again);
  auto expected = r.headers;
  bool tagged = false;
  for (const auto& [name, value] : r.headers)
    tagged = tagged || (name.size() == 4 && (name[0] | 0x20) == 'e' && (name[1] | 0x20) == 't' &&
                        (name[2] | 0x20) == 'a' && (name[3] | 0x20) == 'g');
  if (!tagged) expected.emplace_back("etag", httpcache::strong_etag(r.body));
  if (back.version != 2 || back.status != r.status || back.media_type != r.media_type || back.headers != expected ||
      back.body != r.body || back.stored_at_ms != r.stored_at_ms || back.vary != r.vary)
    std::abort();
  return 0;
}
