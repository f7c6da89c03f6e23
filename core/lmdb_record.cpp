// SPDX-License-Identifier: MIT
#include "lmdb_record.hpp"

#include <openssl/evp.h>

#include <cstring>

#include "error.hpp"
#include "fork.hpp"

namespace httpcache::lmdb_record {

namespace {

constexpr unsigned char version = 1;
constexpr unsigned char flag_key = 1;
constexpr std::size_t header = 2 + 8 + 8;

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

void store_key_into(std::string_view key, std::string& out) {
  out.clear();
  if (key.size() <= direct_key_max) {
    out.push_back('k');
    out.append(key);
    return;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  detail::fork_fence fence;  // OpenSSL locks its method store: fork() must not cut in
  if (EVP_Digest(key.data(), key.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw error(errc::no_memory, "SHA-256 of a long key failed");
  out.push_back('h');
  out.append(reinterpret_cast<const char*>(digest), length);
}

std::string store_key(std::string_view key) {
  std::string out;
  store_key_into(key, out);
  return out;
}

std::string encode(std::int64_t expires_ms, std::uint64_t stamp, std::string_view key_if_hashed, std::string_view value) {
  std::string out;
  out.reserve(header + (key_if_hashed.empty() ? 0 : 4 + key_if_hashed.size()) + value.size());
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(key_if_hashed.empty() ? 0 : flag_key));
  put_le(out, static_cast<std::uint64_t>(expires_ms), 8);
  put_le(out, stamp, 8);
  if (!key_if_hashed.empty()) {
    put_le(out, key_if_hashed.size(), 4);
    out.append(key_if_hashed);
  }
  out.append(value);
  return out;
}

std::optional<entry> decode(std::string_view bytes) noexcept {
  if (bytes.size() < header || static_cast<unsigned char>(bytes[0]) != version) return std::nullopt;
  const auto flags = static_cast<unsigned char>(bytes[1]);
  if (flags & ~flag_key) return std::nullopt;
  entry e;
  e.expires_ms = static_cast<std::int64_t>(get_le(bytes.data() + 2, 8));
  e.stamp = get_le(bytes.data() + 10, 8);
  std::size_t at = header;
  if (flags & flag_key) {
    if (bytes.size() - at < 4) return std::nullopt;
    const std::uint64_t length = get_le(bytes.data() + at, 4);
    at += 4;
    if (length == 0 || length > bytes.size() - at) return std::nullopt;
    e.key = bytes.substr(at, length);
    at += length;
  }
  e.value = bytes.substr(at);
  return e;
}

std::optional<entry> decode_for(std::string_view key, std::string_view bytes) noexcept {
  auto e = decode(bytes);
  if (!e) return std::nullopt;
  const bool hashed = key.size() > direct_key_max;
  if (hashed ? e->key != key : !e->key.empty()) return std::nullopt;
  return e;
}

}  // namespace httpcache::lmdb_record
