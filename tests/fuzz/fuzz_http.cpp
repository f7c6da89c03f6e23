// SPDX-License-Identifier: MIT
// libFuzzer target: the HTTP rules' parsers (Cache-Control directives, HTTP-dates) and the verdict
// over arbitrary headers. Nothing may throw or crash; the Cache-Control we send for any handler's
// value must itself parse, and a verdict that refuses says why.
#include <cstdlib>
#include <string_view>
#include <vector>

#include "../../core/http_rules.hpp"

namespace http = httpcache::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool per_user = data[0] & 1;
  const int status = 100 + data[0] * 3;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<http::header_view> headers;
  for (std::string_view rest = input; !rest.empty();) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    (void)http::parse_http_date(line.substr(colon + 1));
    const auto control = http::cache_control_for(data[0], per_user, line.substr(colon + 1));
    if (!http::split_directives(control)) std::abort();
  }
  const auto v = http::judge(status, headers, per_user, 1700000000);
  if (v.refused.empty() && v.cap && *v.cap <= 0) std::abort();  // 0 seconds of freshness is refused
  (void)http::parse_cache_control(input);
  return 0;
}
