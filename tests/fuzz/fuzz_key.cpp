// SPDX-License-Identifier: MIT
// libFuzzer target: the key template filler. Input: a template and up to 4 binary arguments.
// format_key must return a key of 1..max_key_bytes bytes or throw errc::invalid, nothing else;
// a template without fields and without arguments comes back unchanged.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/key.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::size_t nargs = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  std::vector<std::string> owned;
  for (std::size_t i = 0; i < nargs; ++i) owned.push_back(in.ConsumeRandomLengthString(64));
  std::string tmpl = in.ConsumeRemainingBytesAsString();
  std::vector<std::string_view> args(owned.begin(), owned.end());
  try {
    std::string key = httpcache::format_key(tmpl, args);
    if (key.empty() || key.size() > httpcache::max_key_bytes) std::abort();
    if (nargs == 0 && tmpl.find('{') == std::string::npos && tmpl.find('}') == std::string::npos && key != tmpl)
      std::abort();
    std::string full = httpcache::full_key("ns", key);
    if (full.compare(0, 3, "ns:") != 0 || full.size() != key.size() + 3) std::abort();
  } catch (const httpcache::error& e) {
    if (e.code() != httpcache::errc::invalid) std::abort();
  }
  return 0;
}
