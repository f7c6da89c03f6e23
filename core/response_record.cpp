// SPDX-License-Identifier: MIT
#include "response_record.hpp"

#include <fmt/format.h>

#include <charconv>

#include <openssl/evp.h>

#include "error.hpp"
#include "fork.hpp"

namespace httpcache {

namespace {

[[noreturn]] void not_a_record(const char* why) {
  throw error(errc::invalid, fmt::format("not a valid response record: {}", why));
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


// The size of the header lines; throws for a list the format cannot carry.
std::size_t checked_headers(const header_list& headers) {
  if (headers.size() > max_record_headers)
    throw error(errc::invalid, fmt::format("{} headers, over the limit of {}", headers.size(), max_record_headers));
  std::size_t size = 0;
  for (const auto& [name, value] : headers) {
    if (!is_token(name)) throw error(errc::invalid, "header name is not an HTTP token");
    if (!is_line_safe(value)) throw error(errc::invalid, "header value contains CR, LF or NUL");
    size += name.size() + value.size() + 3;
  }
  return size;
}

void append_headers(std::string& out, const header_list& headers) {
  for (const auto& [name, value] : headers) out.append(name).append(": ").append(value).push_back('\n');
}

void check_status_and_media(int status, std::string_view media_type) {
  if (status < 100 || status > 999) throw error(errc::invalid, fmt::format("HTTP status {} is out of range", status));
  if (!is_line_safe(media_type)) throw error(errc::invalid, "media type contains CR, LF or NUL");
}

bool has_etag(const header_list& headers) {
  for (const auto& [name, value] : headers)
    if (name.size() == 4 && (name[0] | 0x20) == 'e' && (name[1] | 0x20) == 't' && (name[2] | 0x20) == 'a' &&
        (name[3] | 0x20) == 'g')
      return true;
  return false;
}

}  // namespace

static bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}


std::string encode_record(int status, std::string_view media_type, const header_list& headers, std::string_view body) {
  check_status_and_media(status, media_type);
  std::string out;
  out.reserve(record_magic.size() + 16 + media_type.size() + 1 + checked_headers(headers) + body.size());
  out.append(record_magic);
  out.append(fmt::format("{} {}\n", status, headers.size()));
  out.append(media_type).push_back('\n');
  append_headers(out, headers);
  out.append(body);
  return out;
}

std::string encode_record_v2(int status, std::string_view media_type, const header_list& headers,
                             std::string_view body, std::int64_t stored_at_ms, const header_list& vary) {
  check_status_and_media(status, media_type);
  if (stored_at_ms < 0) throw error(errc::invalid, "stored-at time is negative");
  header_list all(headers);
  std::string etag;
  if (!has_etag(headers)) {
    etag = strong_etag(body);
    all.emplace_back("etag", etag);
  }
  if (vary.size() > max_record_headers) throw error(errc::invalid, "too many Vary values");
  const std::size_t size = checked_headers(all) + checked_headers(vary);
  std::string out;
  out.reserve(record_magic_v2.size() + 48 + media_type.size() + 1 + size + body.size());
  out.append(record_magic_v2);
  out.append(fmt::format("{} {} {} {}\n", status, all.size(), stored_at_ms, vary.size()));
  out.append(media_type).push_back('\n');
  append_headers(out, all);
  append_headers(out, vary);
  out.append(body);
  return out;
}

std::string strong_etag(std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  detail::fork_fence fence;  // OpenSSL locks its method store: fork() must not cut in
  if (EVP_Digest(body.data(), body.size(), digest, &n, EVP_sha256(), nullptr) != 1 || n < 16)
    throw error(errc::no_memory, "SHA-256 failed");
  std::string out = "\"";
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < 16; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  out.push_back('"');
  return out;
}

namespace {

void take_headers(std::string_view& data, std::size_t n, std::vector<std::pair<std::string, std::string>>& out) {
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view line = take_line(data, "missing header line");
    auto colon = line.find(": ");
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) not_a_record("bad header line");
    std::string_view value = line.substr(colon + 2);
    if (!is_line_safe(value)) not_a_record("bad header value");
    out.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
}

}  // namespace

response_record decode_record(std::string_view data) {
  response_record r;
  if (data.substr(0, record_magic_v2.size()) == record_magic_v2) {
    r.version = 2;
  } else if (data.substr(0, record_magic.size()) != record_magic) {
    not_a_record("bad magic or version");
  }
  data.remove_prefix(record_magic.size());
  std::string_view counts = take_line(data, "no status line");
  std::vector<std::string_view> fields;
  for (std::size_t at = 0; at <= counts.size();) {
    const auto space = counts.find(' ', at);
    fields.push_back(counts.substr(at, space == std::string_view::npos ? std::string_view::npos : space - at));
    if (space == std::string_view::npos) break;
    at = space + 1;
  }
  if (fields.size() != (r.version == 2 ? 4u : 2u)) not_a_record("bad status line");
  r.status = take_number<int>(fields[0], 100, 999, "bad status");
  auto nheaders = take_number<std::size_t>(fields[1], 0, max_record_headers, "bad header count");
  std::size_t nvary = 0;
  if (r.version == 2) {
    r.stored_at_ms = take_number<std::int64_t>(fields[2], 0, std::int64_t{1} << 52, "bad stored-at time");
    nvary = take_number<std::size_t>(fields[3], 0, max_record_headers, "bad Vary count");
  }
  std::string_view media = take_line(data, "no media type line");
  if (!is_line_safe(media)) not_a_record("bad media type");
  r.media_type.assign(media);
  take_headers(data, nheaders, r.headers);
  take_headers(data, nvary, r.vary);
  r.body.assign(data);
  return r;
}

}  // namespace httpcache
