// SPDX-License-Identifier: MIT
// libFuzzer target: the key template filler. Input: two sets of up to 4 binary arguments and a
// template. format_key must return a key of 1..max_key_bytes bytes or throw errc::invalid,
// nothing else; a template without fields and without arguments comes back unchanged; and the
// filling is injective: two different argument lists never give one template the same key (the
// property that stops a user id from steering a key into another user's entry).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/key.hpp"

namespace {

std::optional<std::string> format(const std::string& tmpl, const std::vector<std::string>& owned) {
  std::vector<std::string_view> args(owned.begin(), owned.end());
  try {
    std::string key = httpcache::format_key(tmpl, args);
    if (key.empty() || key.size() > httpcache::max_key_bytes) std::abort();
    std::string full = httpcache::full_key("ns", key);
    if (full.compare(0, 3, "ns:") != 0 || full.size() != key.size() + 3) std::abort();
    return key;
  } catch (const httpcache::error& e) {
    if (e.code() != httpcache::errc::invalid) std::abort();
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::size_t nargs = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  std::vector<std::string> a, b;
  for (std::size_t i = 0; i < nargs; ++i) a.push_back(in.ConsumeRandomLengthString(64));
  for (std::size_t i = 0; i < nargs; ++i) b.push_back(in.ConsumeRandomLengthString(64));
  std::string tmpl = in.ConsumeRemainingBytesAsString();
  auto ka = format(tmpl, a);
  if (ka && nargs == 0 && tmpl.find('{') == std::string::npos && tmpl.find('}') == std::string::npos && *ka != tmpl)
    std::abort();
  auto kb = format(tmpl, b);
  if (ka && kb && *ka == *kb && a != b) std::abort();
  return 0;
}
