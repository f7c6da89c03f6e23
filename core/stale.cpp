// SPDX-License-Identifier: MIT
#include "stale.hpp"

#include <fmt/format.h>

#include <charconv>

#include "error.hpp"

namespace httpcache {

void validate_stale_windows(const stale_windows& w) {
  for (std::int64_t ms : {w.while_revalidate_ms, w.if_error_ms})
    if (ms < 0 || ms > max_stale_window_ms)
      throw error(errc::invalid, fmt::format("a stale window is {} ms: it must be 0..{}", ms, max_stale_window_ms));
}

std::string wrap_fresh(std::int64_t fresh_until_ms, const stale_windows& w, std::string_view value) {
  std::string out(fresh_prefix);
  out += fmt::format("{} {} {}\n", fresh_until_ms, w.while_revalidate_ms, w.if_error_ms);
  out.append(value);
  return out;
}

namespace {

// A non-negative decimal with no leading zero, ended by `end`, at the front of in (consumed).
bool take(std::string_view& in, char end, std::int64_t& n) {
  auto stop = in.find(end);
  if (stop == std::string_view::npos || stop == 0 || stop > 19 || (stop > 1 && in[0] == '0') || in[0] < '0' ||
      in[0] > '9')  // one encoding: no sign, no leading zero (found by fuzz_fresh: "-0")
    return false;
  auto [ptr, ec] = std::from_chars(in.data(), in.data() + stop, n);
  if (ec != std::errc() || ptr != in.data() + stop || n < 0) return false;
  in.remove_prefix(stop + 1);
  return true;
}

}  // namespace

bool unwrap_fresh(std::string_view value, freshness& f, std::string_view& payload) {
  if (!is_fresh_wrapped(value)) return false;
  std::string_view in = value.substr(fresh_prefix.size());
  if (!take(in, ' ', f.fresh_until_ms) || !take(in, ' ', f.windows.while_revalidate_ms) ||
      !take(in, '\n', f.windows.if_error_ms))
    return false;
  if (f.windows.while_revalidate_ms > max_stale_window_ms || f.windows.if_error_ms > max_stale_window_ms) return false;
  payload = in;
  return true;
}

}  // namespace httpcache
