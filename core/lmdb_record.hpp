// SPDX-License-Identifier: MIT
// How the lmdb:// store lays out an entry (lmdb_backend.hpp): the LMDB key a cache key is stored
// under, and the record stored there. Pure functions, so that the decoder can be fuzzed alone
// (tests/fuzz/fuzz_lmdb.cpp): a store file is shared by every process of the host, and a record
// another version or a damaged file left must read as a miss, never as another key's value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace httpcache::lmdb_record {

// LMDB keys are at most 511 bytes. A cache key up to direct_key_max bytes is stored as 'k' and the
// key; a longer one as 'h' and the SHA-256 of the key, its record then carrying the whole key,
// which a read compares. The two forms can never be equal, so no key reaches another's record.
inline constexpr std::size_t direct_key_max = 400;
std::string store_key(std::string_view key);
void store_key_into(std::string_view key, std::string& out);  // the same, reusing out's buffer

struct entry {
  std::int64_t expires_ms = 0;  // wall clock (ms since the Unix epoch): shared by every process
  std::uint64_t stamp = 0;      // its place in the store's recency order (lmdb_backend.hpp)
  std::string_view key;         // the whole cache key, for an 'h' store key; empty otherwise
  std::string_view value;
};

// Version 1: u8 version, u8 flags (1: the key follows), i64 expires_ms, u64 stamp (both
// little-endian), [u32 key length, key], value.
std::string encode(std::int64_t expires_ms, std::uint64_t stamp, std::string_view key_if_hashed, std::string_view value);
// nullopt for bytes that are no version-1 record (short, unknown version or flags, a key length
// past the end). Views into `bytes`.
std::optional<entry> decode(std::string_view bytes) noexcept;
// The entry for `key` in the record stored under store_key(key), or nullopt when the record is
// malformed or belongs to another key.
std::optional<entry> decode_for(std::string_view key, std::string_view bytes) noexcept;

}  // namespace httpcache::lmdb_record
