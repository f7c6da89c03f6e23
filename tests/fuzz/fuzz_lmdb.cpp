// SPDX-License-Identifier: MIT
// libFuzzer target: the records of the lmdb:// store (core/lmdb_record.hpp). A store file is
// shared by every process of the host, so a record another version, a damaged file or a foreign
// writer left reaches decode on every read: it must parse or be refused, never crash nor read
// outside the bytes. What parses re-encodes to the same bytes (one encoding per record). A key
// over the direct limit is stored under its digest, and decode_for must refuse its record for any
// other key; the input also builds records from scratch, which come back exactly and refuse every
// truncation of their header.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../../core/lmdb_record.hpp"

using namespace httpcache;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_decoded(std::string_view bytes) {
  auto e = lmdb_record::decode(bytes);
  if (!e) return;
  if (!inside(e->value, bytes) || (!e->key.empty() && !inside(e->key, bytes))) std::abort();
  if (lmdb_record::encode(e->expires_ms, e->stamp, e->key, e->value) != bytes) std::abort();
}

void check_round_trip(FuzzedDataProvider& in) {
  const auto expires = in.ConsumeIntegral<std::int64_t>();
  const auto stamp = in.ConsumeIntegral<std::uint64_t>();
  const bool long_key = in.ConsumeBool();
  std::string key = in.ConsumeRandomLengthString(64);
  if (long_key) key.append(lmdb_record::direct_key_max + 1, 'k');
  const std::string value = in.ConsumeRandomLengthString(256);
  const bool hashed = key.size() > lmdb_record::direct_key_max;
  const std::string skey = lmdb_record::store_key(key);
  if (skey.empty() || skey[0] != (hashed ? 'h' : 'k') || (hashed ? skey.size() != 33 : skey.substr(1) != key)) std::abort();
  const std::string record = lmdb_record::encode(expires, stamp, hashed ? std::string_view(key) : std::string_view(), value);
  auto back = lmdb_record::decode_for(key, record);
  if (!back || back->expires_ms != expires || back->stamp != stamp || back->value != value) std::abort();
  // Another key never reads this record: a direct one never reads a hashed record, and the other
  // way round; two long keys differ in their stored key.
  if (hashed) {
    std::string other = key;
    other.back() = static_cast<char>(other.back() ^ 1);
    if (lmdb_record::decode_for(other, record) || lmdb_record::decode_for("ns:key", record)) std::abort();
  }
  for (std::size_t cut = 0; cut < 18 && cut < record.size(); ++cut)
    if (lmdb_record::decode(std::string_view(record).substr(0, cut))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_decoded(bytes);
  lmdb_record::decode_for("ns:key", bytes);
  lmdb_record::decode_for(std::string(lmdb_record::direct_key_max + 1, 'x'), bytes);
  FuzzedDataProvider in(data, size);
  check_round_trip(in);
  return 0;
}
