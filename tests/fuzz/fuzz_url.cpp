// SPDX-License-Identifier: MIT
// libFuzzer target: the backend URL parser. Any input must either parse or throw our error type
// (never crash, hang or throw anything else), and a parsed URL's redacted form never shows the
// password.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "../../core/error.hpp"
#include "../../core/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    httpcache::backend_url u = httpcache::parse_url(input);
    if (!u.password.empty()) {
      httpcache::backend_url other = u;
      other.password = "a-different-password";
      if (u.redacted() != other.redacted()) std::abort();
    }
    if (u.scheme == httpcache::url_scheme::redis && (u.port < 1 || u.port > 65535)) std::abort();
  } catch (const httpcache::error& e) {
    if (e.code() != httpcache::errc::invalid) std::abort();
  }
  return 0;
}
