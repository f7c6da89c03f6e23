// SPDX-License-Identifier: MIT
// The HTTP storage rules and the Cache-Control of stored responses (see http_rules.hpp).
#include "http_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "error.hpp"
#include "key.hpp"
#include "stale.hpp"

namespace httpcache::http {

namespace {

// delta-seconds above 2^31 are read as 2^31 (RFC 9111 section 1.2.2).
constexpr std::int64_t max_delta = std::int64_t{1} << 31;

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A directive's argument as written after '=': trimmed, surrounding quotes dropped.
std::string_view argument(std::string_view raw) {
  raw = trim(raw);
  while (!raw.empty() && raw.front() == '"') raw.remove_prefix(1);
  while (!raw.empty() && raw.back() == '"') raw.remove_suffix(1);
  return raw;
}

// A delta-seconds argument: nullopt for none; a malformed one is 0 (stale, section 1.2.2).
std::optional<std::int64_t> seconds_of(const std::optional<std::string>& arg) {
  if (!arg) return std::nullopt;
  std::string_view s = trim(*arg);
  if (s.empty()) return 0;
  std::int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    n = std::min(n * 10 + (c - '0'), max_delta);
  }
  return n;
}

const directive* find(const std::vector<directive>& ds, std::string_view name) {
  for (const auto& d : ds)
    if (d.name == name) return &d;  // the first of a repeated name wins
  return nullptr;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct date_reader {
  std::string_view s;
  bool ok = true;

  bool literal(std::string_view lit) {
    if (s.substr(0, lit.size()) != lit) return ok = false;
    s.remove_prefix(lit.size());
    return true;
  }
  // Exactly `n` digits, or 1..n when `n_max` says so (asctime's day is " 6" or "16").
  int digits(std::size_t n) {
    if (s.size() < n) return ok = false, 0;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (s[i] < '0' || s[i] > '9') return ok = false, 0;
      v = v * 10 + (s[i] - '0');
    }
    s.remove_prefix(n);
    return v;
  }
  int month() {
    static constexpr std::array<std::string_view, 12> names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (std::size_t i = 0; i < names.size(); ++i)
      if (s.substr(0, 3) == names[i]) {
        s.remove_prefix(3);
        return static_cast<int>(i) + 1;
      }
    return ok = false, 0;
  }
  bool weekday(bool long_name) {
    static constexpr std::array<std::string_view, 7> short_names = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static constexpr std::array<std::string_view, 7> long_names = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                                   "Friday", "Saturday", "Sunday"};
    for (auto name : long_name ? long_names : short_names)
      if (s.substr(0, name.size()) == name) {
        s.remove_prefix(name.size());
        return true;
      }
    return ok = false;
  }
  void time(int& h, int& m, int& sec) {
    h = digits(2);
    literal(":");
    m = digits(2);
    literal(":");
    sec = digits(2);
  }
};

std::optional<std::int64_t> epoch_of(int year, int month, int day, int h, int m, int s) {
  static constexpr std::array<int, 12> days_in = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > days_in[static_cast<std::size_t>(month - 1)] || h > 23 || m > 59 ||
      s > 60)
    return std::nullopt;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return std::nullopt;
  return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 + h * 3600 + m * 60 +
         s;
}

}  // namespace

std::optional<std::vector<std::string_view>> split_directives(std::string_view value) {
  std::vector<std::string_view> parts;
  bool quoted = false, escaped = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (escaped) {
      escaped = false;
    } else if (quoted && c == '\\') {
      escaped = true;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      if (auto p = trim(value.substr(start, i - start)); !p.empty()) parts.push_back(p);
      start = i + 1;
    }
  }
  if (quoted) return std::nullopt;
  if (auto p = trim(value.substr(start)); !p.empty()) parts.push_back(p);
  return parts;
}

std::optional<std::vector<directive>> parse_cache_control(std::string_view value) {
  auto parts = split_directives(value);
  if (!parts) return std::nullopt;
  std::vector<directive> out;
  out.reserve(parts->size());
  for (auto part : *parts) {
    const auto eq = part.find('=');
    directive d{lowered(trim(part.substr(0, eq))), std::nullopt};
    if (eq != std::string_view::npos) {
      d.arg = std::string(argument(part.substr(eq + 1)));
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::optional<std::int64_t> parse_http_date(std::string_view text) {
  text = trim(text);
  date_reader r{text};
  int day = 0, month = 0, year = 0, h = 0, m = 0, s = 0;
  if (text.size() > 3 && text[3] == ',') {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    r.weekday(false);
    r.literal(", ");
    day = r.digits(2);
    r.literal(" ");
    month = r.month();
    r.literal(" ");
    year = r.digits(4);
    r.literal(" ");
    r.time(h, m, s);
    r.literal(" GMT");
  } else if (text.find(',') != std::string_view::npos) {  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    r.weekday(true);
    r.literal(", ");
    day = r.digits(2);
    r.literal("-");
    month = r.month();
    r.literal("-");
    year = r.digits(2);
    year += year < 70 ? 2000 : 1900;  // section 5.6.7: a year more than 50 years ahead is in the past
    r.literal(" ");
    r.time(h, m, s);
    r.literal(" GMT");
  } else {  // asctime: Sun Nov  6 08:49:37 1994
    r.weekday(false);
    r.literal(" ");
    month = r.month();
    r.literal(" ");
    if (!r.s.empty() && r.s.front() == ' ') {
      r.s.remove_prefix(1);
      day = r.digits(1);
    } else {
      day = r.digits(2);
    }
    r.literal(" ");
    r.time(h, m, s);
    r.literal(" ");
    year = r.digits(4);
  }
  if (!r.ok || !r.s.empty()) return std::nullopt;
  return epoch_of(year, month, day, h, m, s);
}

verdict judge(int status, const std::vector<header_view>& headers, bool per_user, std::int64_t now,
              const std::vector<std::string_view>& varied) {
  if (status < 200 || status > 299 || status == 206) return {fmt::format("status {}", status), std::nullopt};
  std::string control;
  std::optional<std::string_view> expires;
  for (const auto& [name, value] : headers) {
    if (iequals(name, "set-cookie")) return {"it sets a cookie", std::nullopt};
    if (iequals(name, "cache-control")) {
      if (!control.empty()) control += ", ";
      control += value;
    } else if (iequals(name, "vary")) {
      for (std::string_view rest = value; !rest.empty();) {
        const auto comma = rest.find(',');
        const std::string field = lowered(trim(rest.substr(0, comma)));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (field.empty() || (per_user && (field == "authorization" || field == "cookie"))) continue;
        if (field != "*" && std::any_of(varied.begin(), varied.end(), [&](std::string_view v) { return iequals(v, field); }))
          continue;
        return {fmt::format("Vary: {}{}", value, per_user ? "" : " under a key shared by users"), std::nullopt};
      }
    } else if (iequals(name, "expires")) {
      expires = value;  // the last one, as a list of dates would be read
    }
  }
  auto ds = parse_cache_control(control);
  if (!ds) return {"its Cache-Control does not parse", std::nullopt};
  for (std::string_view name : {"no-store", "no-cache"})
    if (find(*ds, name)) return {fmt::format("Cache-Control: {}", name), std::nullopt};
  if (find(*ds, "private") && !per_user) return {"Cache-Control: private under a key shared by users", std::nullopt};
  std::optional<std::int64_t> cap;
  if (const auto* d = find(*ds, "s-maxage")) {
    cap = seconds_of(d->arg);
  } else if (const auto* d2 = find(*ds, "max-age")) {
    cap = seconds_of(d2->arg);
  }
  if (!cap && expires) {
    const auto when = parse_http_date(*expires);
    cap = when ? std::max<std::int64_t>(*when - now, 0) : 0;  // an invalid date is already expired (5.3)
  }
  if (cap && *cap == 0) return {"its handler allows 0 seconds of freshness", std::nullopt};
  return {std::string(), cap};
}

std::string variant(const std::vector<header_view>& request_headers, const std::vector<std::string_view>& varied) {
  std::vector<std::string> names;
  for (auto v : varied) {
    if (!is_token(v) || v == "*") throw error(errc::invalid, "a varied header name must be an HTTP token other than *");
    names.push_back(lowered(v));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string out;
  for (const auto& name : names) {
    std::string joined;
    bool present = false;
    for (const auto& [n, value] : request_headers)
      if (iequals(n, name)) {
        if (present) joined += ", ";
        joined += trim(value);
        present = true;
      }
    out += '.';
    if (!present) {
      out += 'n';
      continue;
    }
    out += 'v';
    append_key_value(out, joined);
  }
  return out;
}

stale_directives read_stale(const std::vector<header_view>& headers) {
  std::string control;
  for (const auto& [name, value] : headers)
    if (iequals(name, "cache-control")) {
      if (!control.empty()) control += ", ";
      control += value;
    }
  stale_directives out;
  auto ds = parse_cache_control(control);
  if (!ds) return out;
  // Clamped to the longest window an entry may have (a handler's huge value must not fail it).
  constexpr std::int64_t most = max_stale_window_ms / 1000;
  if (const auto* d = find(*ds, "stale-while-revalidate")) out.while_revalidate = seconds_of(d->arg);
  if (const auto* d = find(*ds, "stale-if-error")) out.if_error = seconds_of(d->arg);
  for (auto* w : {&out.while_revalidate, &out.if_error})
    if (*w && **w > most) *w = most;
  return out;
}

namespace {

// The opaque-tag of an entity-tag (W/ dropped: the weak comparison of section 8.8.3.2).
std::string_view opaque(std::string_view tag) {
  tag = trim(tag);
  if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
  return tag;
}

std::optional<std::string_view> header_of(const std::vector<std::pair<std::string, std::string>>& headers,
                                          std::string_view name) {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return std::string_view(v);
  return std::nullopt;
}

}  // namespace

request_directives read_request(const std::vector<header_view>& headers) {
  request_directives out;
  std::string control;
  bool has_control = false, pragma_no_cache = false;
  for (const auto& [name, value] : headers) {
    if (iequals(name, "cache-control")) {
      has_control = true;
      if (!control.empty()) control += ", ";
      control += value;
    } else if (iequals(name, "pragma")) {
      auto ds = parse_cache_control(value);  // the same token list syntax
      pragma_no_cache = pragma_no_cache || (ds && find(*ds, "no-cache"));
    }
  }
  if (!has_control) {
    out.no_cache = pragma_no_cache;
    return out;
  }
  auto ds = parse_cache_control(control);
  if (!ds) return out;  // an unparsable Cache-Control asks nothing
  out.no_store = find(*ds, "no-store") != nullptr;
  const auto* max_age = find(*ds, "max-age");
  out.no_cache = find(*ds, "no-cache") != nullptr || (max_age && seconds_of(max_age->arg) == std::optional<std::int64_t>(0));
  return out;
}

bool not_modified(const response_record& record, const std::vector<header_view>& request) {
  return not_modified(header_of(record.headers, "etag"), header_of(record.headers, "last-modified"),
                      record.stored_at_ms, request);
}

bool not_modified(std::optional<std::string_view> etag, std::optional<std::string_view> last_modified,
                  std::int64_t stored_at_ms, const std::vector<header_view>& request) {
  std::optional<std::string> if_none_match;
  std::optional<std::string_view> if_modified_since;
  for (const auto& [name, value] : request) {
    if (iequals(name, "if-none-match")) {
      if_none_match = if_none_match ? *if_none_match + "," + std::string(value) : std::string(value);
    } else if (iequals(name, "if-modified-since") && !if_modified_since) {
      if_modified_since = value;
    }
  }
  if (if_none_match) {  // when present, If-Modified-Since is ignored (section 13.2.2)
    if (trim(*if_none_match) == "*") return true;
    if (!etag || opaque(*etag).empty()) return false;
    for (std::string_view rest = *if_none_match; !rest.empty();) {
      const auto comma = rest.find(',');
      if (opaque(rest.substr(0, comma)) == opaque(*etag)) return true;
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    return false;
  }
  if (!if_modified_since) return false;
  const auto since = parse_http_date(*if_modified_since);
  if (!since) return false;  // an invalid date is ignored
  std::optional<std::int64_t> modified;
  if (last_modified) modified = parse_http_date(*last_modified);
  if (!modified && stored_at_ms > 0) modified = stored_at_ms / 1000;
  return modified && *modified <= *since;
}

std::string cache_control_for(std::int64_t max_age, bool per_user, std::optional<std::string_view> handler) {
  max_age = std::max<std::int64_t>(max_age, 0);
  if (!handler) return fmt::format(per_user ? "private, max-age={}" : "max-age={}", max_age);
  std::vector<std::string> parts;
  bool timed = false, has_private = false;
  for (auto part : split_directives(*handler).value_or(std::vector<std::string_view>{})) {
    const auto eq = part.find('=');
    const std::string name = lowered(trim(part.substr(0, eq)));
    if (per_user && name == "public") continue;  // a per-user response is private: never tell a shared cache otherwise
    if (name == "max-age" || name == "s-maxage") {
      timed = true;
      std::optional<std::string> arg;
      if (eq != std::string_view::npos) {
        arg = std::string(argument(part.substr(eq + 1)));
      }
      const auto allowed = eq == std::string_view::npos ? std::optional<std::int64_t>(0) : seconds_of(arg);
      parts.push_back(fmt::format("{}={}", name, std::min(allowed.value_or(0), max_age)));
      continue;
    }
    has_private = has_private || name == "private";
    parts.emplace_back(part);
  }
  if (!timed) parts.push_back(fmt::format("max-age={}", max_age));
  if (per_user && !has_private) parts.insert(parts.begin(), "private");
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace httpcache::http
