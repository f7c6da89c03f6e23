// SPDX-License-Identifier: MIT
// libFuzzer target: the stored response decoder. Any bytes under our key (a foreign writer, a
// corrupted value) must decode or be refused with errc::invalid; what decodes must re-encode to a
// record that decodes to the same fields.
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
  std::vector<std::pair<std::string_view, std::string_view>> headers(r.headers.begin(), r.headers.end());
  std::string again = httpcache::encode_record(r.status, r.media_type, headers, r.body);  // must not throw
  httpcache::response_record back = httpcache::decode_record(again);
  if (back.status != r.status || back.media_type != r.media_type || back.headers != r.headers || back.body != r.body)
    std::abort();
  return 0;
}
