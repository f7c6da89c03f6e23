// SPDX-License-Identifier: MIT
// libFuzzer target: the HTTP rules' parsers (Cache-Control directives, HTTP-dates, the stale-*
// directives) and the verdict over arbitrary headers, and the variant part of a key. Nothing may
// throw or crash (variant() throws errc::invalid for a varied name that is not a token, and only
// then); the Cache-Control we send for any handler's value must itself parse, and a verdict that
// refuses says why.
//
// Input: a flags byte, then lines. A line with a ':' is a header (name before the first colon); a
// line without one names a header the key varies by (any bytes: the non-token ones must be
// refused). variant() must be deterministic, independent of the varied names' order, case and
// repetition, equal to a model of its encoding, and give two header lists the same part exactly
// when their values of every varied header are equal (a list rebuilt with other headers around
// the varied ones, their names' case flipped and their values padded, gets the same part; one
// varied value changed or dropped gets another). read_stale must read what a model of the first
// stale-* directive reads, within 0..2^31 s.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/http_rules.hpp"
#include "../../core/response_record.hpp"  // is_token
#include "../../core/stale.hpp"  // max_stale_window_ms

namespace http = httpcache::http;

namespace {

constexpr std::int64_t max_delta = std::int64_t{1} << 31;
// read_stale clamps a window to the longest an entry may have (366 days).
constexpr std::int64_t max_window = httpcache::max_stale_window_ms / 1000;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string flipped(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    const auto u = static_cast<unsigned char>(c);
    c = static_cast<char>(std::islower(u) ? std::toupper(u) : std::tolower(u));
  }
  return out;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The varied headers' values as variant() must see them: per sorted distinct lower-cased name,
// the request's values (trimmed) joined by ", ", or nullopt when it has none.
using model = std::vector<std::pair<std::string, std::optional<std::string>>>;

model values_of(const std::vector<http::header_view>& headers, const std::vector<std::string_view>& varied) {
  std::vector<std::string> names;
  for (auto v : varied) names.push_back(lowered(v));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  model out;
  for (const auto& name : names) {
    std::optional<std::string> joined;
    for (const auto& [n, v] : headers)
      if (iequals(n, name)) joined = joined ? *joined + ", " + std::string(trimmed(v)) : std::string(trimmed(v));
    out.emplace_back(name, std::move(joined));
  }
  return out;
}

// The documented encoding: ".n" or ".v" + the value percent-encoded outside [A-Za-z0-9_-].
std::string encoded(const model& m) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const auto& [name, value] : m) {
    out += '.';
    if (!value) {
      out += 'n';
      continue;
    }
    out += 'v';
    for (char ch : *value) {
      const auto c = static_cast<unsigned char>(ch);
      if (std::isalnum(c) || c == '_' || c == '-') {
        out += ch;
      } else {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
  }
  return out;
}

bool is_varied(std::string_view name, const std::vector<std::string_view>& varied) {
  return std::any_of(varied.begin(), varied.end(), [&](std::string_view v) { return iequals(v, name); });
}

void check_variant(const std::vector<http::header_view>& headers, const std::vector<std::string_view>& varied,
                   const std::uint8_t* data, std::size_t size) {
  const bool tokens = std::all_of(varied.begin(), varied.end(),
                                  [](std::string_view v) { return httpcache::is_token(v) && v != "*"; });
  std::string part;
  try {
    part = http::variant(headers, varied);
  } catch (const httpcache::error& e) {
    if (tokens || e.code() != httpcache::errc::invalid) std::abort();  // refused only for a non-token name
    return;
  }
  if (!tokens) std::abort();  // a non-token name was accepted
  if (http::variant(headers, varied) != part) std::abort();  // deterministic
  const model mine = values_of(headers, varied);
  if (encoded(mine) != part) std::abort();

  // The same names in another order, case, with repeats: the same part.
  std::vector<std::string> names;
  for (auto it = varied.rbegin(); it != varied.rend(); ++it) names.push_back(flipped(*it));
  if (!varied.empty()) names.push_back(std::string(varied.front()));
  const std::vector<std::string_view> renamed(names.begin(), names.end());
  if (http::variant(headers, renamed) != part) std::abort();

  // Another request with the same values of the varied headers (other headers around them,
  // varied names' case flipped, their values padded): the same part.
  std::vector<std::string> owned;
  owned.reserve(4 * headers.size() + 4);
  std::vector<http::header_view> other;
  std::size_t salt = size ? data[size - 1] : 0;
  auto junk = [&](std::string_view name, std::string_view value) {
    owned.emplace_back(name);
    const std::string_view n = owned.back();
    owned.emplace_back(std::string(value) + "\x01");
    other.emplace_back(n, owned.back());
  };
  junk("x-not-varied-first", "a");
  for (const auto& [n, v] : headers) {
    if (!is_varied(n, varied)) {
      if (++salt % 3) junk(n, v);  // another value, or dropped
      continue;
    }
    owned.push_back(salt % 2 ? flipped(n) : std::string(n));
    const std::string_view name = owned.back();
    owned.push_back(std::string(salt % 5 ? " \t" : "") + std::string(v) + (salt % 7 ? "\t " : ""));
    other.emplace_back(name, owned.back());
    if (++salt % 4 == 0) junk("x-between", v);
  }
  if (values_of(other, varied) != mine) std::abort();  // (the harness's own rebuild)
  if (http::variant(other, varied) != part) std::abort();

  // One varied header's value changed, or all of one name's dropped: another part.
  if (mine.empty()) return;
  const std::string& target = mine[salt % mine.size()].first;
  std::vector<http::header_view> changed;
  const std::string extra("\x02", 1);
  std::string bumped;
  bool dropped = salt % 2 == 0 && mine[salt % mine.size()].second.has_value();
  for (const auto& [n, v] : headers) {
    if (!iequals(n, target)) {
      changed.emplace_back(n, v);
    } else if (!dropped && bumped.empty()) {
      bumped = std::string(v) + extra;
      changed.emplace_back(n, bumped);
    } else if (!dropped) {
      changed.emplace_back(n, v);
    }
  }
  if (!dropped && bumped.empty()) changed.emplace_back(target, extra);  // absent: now present
  if (values_of(changed, varied) == mine) std::abort();  // (the harness's own change)
  if (http::variant(changed, varied) == part) std::abort();  // two values, one variant
}

// read_stale against a model: the first stale-while-revalidate / stale-if-error directive of the
// joined Cache-Control values, as delta-seconds (malformed: 0; over 2^31: 2^31; no argument: none).
void check_stale(const std::vector<http::header_view>& headers) {
  const http::stale_directives d = http::read_stale(headers);
  for (const auto& w : {d.while_revalidate, d.if_error})
    if (w && (*w < 0 || *w > max_window)) std::abort();
  std::string control;
  for (const auto& [n, v] : headers)
    if (iequals(n, "cache-control")) {
      if (!control.empty()) control += ", ";
      control += v;
    }
  const auto ds = http::parse_cache_control(control);
  auto want = [&](std::string_view name) -> std::optional<std::int64_t> {
    if (!ds) return std::nullopt;
    for (const auto& x : *ds) {
      if (x.name != name) continue;
      if (!x.arg) return std::nullopt;
      std::string_view s = trimmed(*x.arg);
      if (s.empty()) return 0;
      std::int64_t n = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return 0;
        n = std::min(n * 10 + (c - '0'), max_delta);
      }
      return std::min(n, max_window);
    }
    return std::nullopt;
  };
  if (d.while_revalidate != want("stale-while-revalidate") || d.if_error != want("stale-if-error")) std::abort();
  // Only Cache-Control counts: the same answer from its headers alone, in any name case.
  std::vector<std::string> names;
  std::vector<http::header_view> only;
  for (const auto& [n, v] : headers)
    if (iequals(n, "cache-control")) names.push_back(flipped(n));
  std::size_t i = 0;
  for (const auto& [n, v] : headers)
    if (iequals(n, "cache-control")) only.emplace_back(names[i++], v);
  const auto again = http::read_stale(only);
  if (again.while_revalidate != d.while_revalidate || again.if_error != d.if_error) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool per_user = data[0] & 1;
  const int status = 100 + data[0] * 3;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<http::header_view> headers;
  std::vector<std::string_view> varied;
  for (std::string_view rest = input; !rest.empty();) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      varied.push_back(line);
      continue;
    }
    headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    (void)http::parse_http_date(line.substr(colon + 1));
    const auto control = http::cache_control_for(data[0], per_user, line.substr(colon + 1));
    if (!http::split_directives(control)) std::abort();
  }
  const auto v = http::judge(status, headers, per_user, 1700000000);
  if (v.refused.empty() && v.cap && *v.cap <= 0) std::abort();  // 0 seconds of freshness is refused
  (void)http::parse_cache_control(input);

  // Varying by names only lets more responses be stored, with the same freshness; a response
  // whose Vary names only varied headers is refused for another reason, if at all.
  const auto varied_verdict = http::judge(status, headers, per_user, 1700000000, varied);
  if (v.refused.empty() && (!varied_verdict.refused.empty() || varied_verdict.cap != v.cap)) std::abort();
  if (varied_verdict.refused.empty() && varied_verdict.cap && *varied_verdict.cap <= 0) std::abort();
  if (varied_verdict.refused.rfind("Vary:", 0) == 0) {
    bool covered = true;  // every field of every Vary is varied (or a per-user key's own)
    for (const auto& [n, value] : headers) {
      if (!iequals(n, "vary")) continue;
      for (std::string_view rest = value; !rest.empty();) {
        const auto comma = rest.find(',');
        const std::string field = lowered(trimmed(rest.substr(0, comma)));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (field.empty() || (per_user && (field == "authorization" || field == "cookie"))) continue;
        covered = covered && field != "*" && is_varied(field, varied);  // Vary: * is never covered
      }
    }
    if (covered) std::abort();
  }

  check_variant(headers, varied, data, size);
  // Every header name varied (non-tokens among them are refused), and none.
  std::vector<std::string_view> all;
  for (const auto& [n, value] : headers) all.push_back(n);
  check_variant(headers, all, data, size);
  check_variant(headers, {}, data, size);
  check_stale(headers);
  return 0;
}
