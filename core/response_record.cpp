// SPDX-License-Identifier: MIT
#include "response_record.hpp"

#include <fmt/format.h>

#include <charconv>

#include "error.hpp"

namespace httpcache {

namespace {

[[noreturn]] void not_a_record(const char* why) {
  throw error(errc::invalid, fmt::format("not a valid response record: {}", why));
}

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

bool is_line_safe(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

// Takes the next line (without its '\n') off the front of data.
std::string_view take_line(std::string_view& data, const char* what) {
  auto nl = data.find('\n');
  if (nl == std::string_view::npos) not_a_record(what);
  std::string_view line = data.substr(0, nl);
  data.remove_prefix(nl + 1);
  return line;
}

template <typename Int>
Int take_number(std::string_view text, Int min, Int max, const char* what) {
  Int value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    not_a_record(what);
  return value;
}

}  // namespace

std::string encode_record(int status, std::string_view media_type,
                          const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                          std::string_view body) {
  if (status < 100 || status > 999) throw error(errc::invalid, fmt::format("HTTP status {} is out of range", status));
  if (!is_line_safe(media_type)) throw error(errc::invalid, "media type contains CR, LF or NUL");
  if (headers.size() > max_record_headers)
    throw error(errc::invalid, fmt::format("{} headers, over the limit of {}", headers.size(), max_record_headers));
  std::size_t size = record_magic.size() + 16 + media_type.size() + 1 + body.size();
  for (const auto& [name, value] : headers) {
    if (!is_token(name)) throw error(errc::invalid, "header name is not an HTTP token");
    if (!is_line_safe(value)) throw error(errc::invalid, "header value contains CR, LF or NUL");
    size += name.size() + value.size() + 3;
  }
  std::string out;
  out.reserve(size);
  out.append(record_magic);
  out.append(fmt::format("{} {}\n", status, headers.size()));
  out.append(media_type).push_back('\n');
  for (const auto& [name, value] : headers) out.append(name).append(": ").append(value).push_back('\n');
  out.append(body);
  return out;
}

response_record decode_record(std::string_view data) {
  if (data.substr(0, record_magic.size()) != record_magic) not_a_record("bad magic or version");
  data.remove_prefix(record_magic.size());
  std::string_view counts = take_line(data, "no status line");
  auto space = counts.find(' ');
  if (space == std::string_view::npos) not_a_record("bad status line");
  response_record r;
  r.status = take_number<int>(counts.substr(0, space), 100, 999, "bad status");
  auto nheaders = take_number<std::size_t>(counts.substr(space + 1), 0, max_record_headers, "bad header count");
  std::string_view media = take_line(data, "no media type line");
  if (!is_line_safe(media)) not_a_record("bad media type");
  r.media_type.assign(media);
  r.headers.reserve(nheaders);
  for (std::size_t i = 0; i < nheaders; ++i) {
    std::string_view line = take_line(data, "missing header line");
    auto colon = line.find(": ");
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) not_a_record("bad header line");
    std::string_view value = line.substr(colon + 2);
    if (!is_line_safe(value)) not_a_record("bad header value");
    r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  r.body.assign(data);
  return r;
}

}  // namespace httpcache
