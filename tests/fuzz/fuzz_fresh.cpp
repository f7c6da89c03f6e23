// SPDX-License-Identifier: MIT
// libFuzzer target: the freshness envelope of entries stored with stale windows (core/stale.hpp).
// Any bytes under an entry's key (a foreign writer, a corrupted value) reach unwrap_fresh on every
// read, on their own or inside a tags envelope (cache.cpp stores tags.wrap(wrap_fresh(value)) for
// a tagged entry with windows): they must parse or be refused, never crash. What parses is exactly
// what wrap_fresh writes for the parsed freshness and payload (one encoding per envelope), with
// windows a writer could have validated (0..max_stale_window_ms) and a payload that is the value's
// tail. The input (as is, behind the envelope's prefix when it lacks it, and inside a tags
// envelope) is the value read; it also builds envelopes from scratch, which must come back exactly
// (alone and nested), refuse every truncation of their header, and be refused on the way back when
// a number is out of range (wrap_fresh does not validate: its callers do).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/stale.hpp"
#include "../../core/tags.hpp"

using namespace httpcache;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool valid_windows(const stale_windows& w) {
  try {
    validate_stale_windows(w);
  } catch (const error& e) {
    if (e.code() != errc::invalid) std::abort();
    return false;
  }
  return true;
}

// One value with the freshness envelope's prefix (or not), as unwrap_fresh reads it.
void read_fresh(std::string_view value) {
  freshness f;
  std::string_view payload;
  if (!unwrap_fresh(value, f, payload)) return;
  if (!is_fresh_wrapped(value)) std::abort();
  if (f.fresh_until_ms < 0) std::abort();
  if (f.windows.while_revalidate_ms < 0 || f.windows.while_revalidate_ms > max_stale_window_ms) std::abort();
  if (f.windows.if_error_ms < 0 || f.windows.if_error_ms > max_stale_window_ms) std::abort();
  if (!valid_windows(f.windows)) std::abort();  // what a reader honours, a writer could have written
  if (f.windows.longest() != std::max(f.windows.while_revalidate_ms, f.windows.if_error_ms)) std::abort();
  if (!inside(payload, value) || payload.data() + payload.size() != value.data() + value.size()) std::abort();
  // One encoding: the parse read exactly what the writer writes.
  if (wrap_fresh(f.fresh_until_ms, f.windows, payload) != value) std::abort();
}

// A stored value as cache.cpp reads it: a tags envelope (if any) first, then the freshness one.
void read_nested(std::string_view value) {
  std::vector<tag_stamp> stamps;
  std::string_view inner;
  if (!unwrap_tagged(value, stamps, inner)) return;
  freshness f;
  std::string_view payload;
  if (!unwrap_fresh(inner, f, payload)) return;
  if (payload.data() + payload.size() != value.data() + value.size()) std::abort();
  std::string again;
  try {
    again = wrap_tagged(stamps, wrap_fresh(f.fresh_until_ms, f.windows, payload));
  } catch (const error&) {
    std::abort();  // what parsed is a valid stamp list
  }
  if (again != value) std::abort();
  // The reader of cache.cpp: a set knowing every stamp's generation finds it current, and the
  // freshness envelope inside is what it unwraps.
  std::vector<std::string> names;
  for (const auto& s : stamps) names.emplace_back(s.tag);
  tag_set set(names);
  for (const auto& s : stamps)
    if (!set.generation(s.tag)) set.learn(s.tag, std::string(s.generation));
  std::vector<std::string> missing;
  std::string_view judged;
  // (a tag stamped twice with two generations is stale for every reader: nothing more to check)
  bool consistent = true;
  for (const auto& s : stamps) consistent = consistent && *set.generation(s.tag) == s.generation;
  const auto v = set.judge(value, judged, missing);
  if (consistent && (v != tag_set::verdict::current || judged.data() != inner.data() || judged.size() != inner.size()))
    std::abort();
}

void read_value(std::string_view input) {
  read_fresh(input);
  read_nested(input);
  if (!is_fresh_wrapped(input)) read_fresh(std::string(fresh_prefix) + std::string(input));
  if (!is_tagged(input)) {
    // Inside a valid tags envelope (one tag, one generation), with and without the fresh prefix.
    static const std::string generation(generation_bytes, 'a');
    const std::vector<tag_stamp> one{{"t", generation}};
    read_nested(wrap_tagged(one, input));
    if (!is_fresh_wrapped(input)) read_nested(wrap_tagged(one, std::string(fresh_prefix) + std::string(input)));
  }
}

constexpr char hex[] = "0123456789abcdef";

std::int64_t pick_number(FuzzedDataProvider& in, std::int64_t max) {
  switch (in.ConsumeIntegralInRange<unsigned>(0, 5)) {
    case 0:
      return 0;
    case 1:
      return max;
    case 2:
      return in.ConsumeIntegralInRange<std::int64_t>(0, 9);
    default:
      return in.ConsumeIntegralInRange<std::int64_t>(0, max);
  }
}

// Envelopes built from the input: in-range ones round-trip, alone and nested; out-of-range ones
// (a negative time, a negative or over-long window) are refused on the way back.
void build_envelopes(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const unsigned flaw = in.ConsumeIntegralInRange<unsigned>(0, 11);  // 0..4: one flaw, else none
  std::int64_t until = pick_number(in, std::numeric_limits<std::int64_t>::max());
  stale_windows w{pick_number(in, max_stale_window_ms), pick_number(in, max_stale_window_ms)};
  const std::size_t ntags = in.ConsumeIntegralInRange<std::size_t>(0, 3);
  std::vector<std::string> tags, generations;
  for (std::size_t i = 0; i < ntags; ++i) {
    std::string tag = in.ConsumeRandomLengthString(64);
    if (tag.empty()) tag.assign(1 + i, 't');
    std::string g;
    for (std::size_t j = 0; j < generation_bytes; ++j) g += hex[in.ConsumeIntegral<std::uint8_t>() & 15];
    tags.push_back(std::move(tag));
    generations.push_back(std::move(g));
  }
  const std::string payload = in.ConsumeRemainingBytesAsString();
  const std::int64_t over = max_stale_window_ms + 1 + static_cast<std::int64_t>(payload.size());
  if (flaw == 0) until = -1 - static_cast<std::int64_t>(payload.size());
  if (flaw == 1) w.while_revalidate_ms = -1 - static_cast<std::int64_t>(payload.size() % 7);
  if (flaw == 2) w.if_error_ms = -1 - static_cast<std::int64_t>(payload.size() % 7);
  if (flaw == 3) w.while_revalidate_ms = payload.size() % 2 ? std::numeric_limits<std::int64_t>::max() : over;
  if (flaw == 4) w.if_error_ms = payload.size() % 2 ? std::numeric_limits<std::int64_t>::max() : over;
  const bool flawed = flaw <= 4;
  if (valid_windows(w) != (flaw == 0 || !flawed)) std::abort();

  const std::string wrapped = wrap_fresh(until, w, payload);
  if (!is_fresh_wrapped(wrapped)) std::abort();
  freshness f;
  std::string_view back;
  const bool parsed = unwrap_fresh(wrapped, f, back);
  if (parsed == flawed) std::abort();  // a flawed envelope was read back, or a sound one refused
  if (flawed) return;
  if (f.fresh_until_ms != until || f.windows.while_revalidate_ms != w.while_revalidate_ms ||
      f.windows.if_error_ms != w.if_error_ms || back != payload)
    std::abort();

  // Any cut inside the header is refused; bytes after it are payload (even another envelope).
  const std::size_t header = wrapped.size() - payload.size();
  for (std::size_t k = 0; k < header; ++k)
    if (unwrap_fresh(std::string_view(wrapped).substr(0, k), f, back)) std::abort();
  const std::string twice = wrap_fresh(until, w, wrapped);
  if (!unwrap_fresh(twice, f, back) || back != wrapped) std::abort();

  // Nested as cache.cpp stores it (tags outside, freshness inside): both come back exactly.
  if (ntags == 0) return;
  std::vector<tag_stamp> stamps;
  for (std::size_t i = 0; i < ntags; ++i) stamps.push_back({tags[i], generations[i]});
  const std::string stored = wrap_tagged(stamps, wrapped);
  std::vector<tag_stamp> got;
  std::string_view inner;
  if (!unwrap_tagged(stored, got, inner) || inner != wrapped || got.size() != ntags) std::abort();
  for (std::size_t i = 0; i < ntags; ++i)
    if (got[i].tag != tags[i] || got[i].generation != generations[i]) std::abort();
  if (!unwrap_fresh(inner, f, back) || back != payload || f.fresh_until_ms != until ||
      f.windows.while_revalidate_ms != w.while_revalidate_ms || f.windows.if_error_ms != w.if_error_ms)
    std::abort();
  if (wrap_tagged(got, wrap_fresh(f.fresh_until_ms, f.windows, back)) != stored) std::abort();
  // A set naming the tags with their generations (the last stamp of a repeated tag must agree).
  tag_set set(tags);
  bool consistent = true;
  for (std::size_t i = 0; i < ntags; ++i) {
    if (auto g = set.generation(tags[i]); g && *g != generations[i]) consistent = false;
    set.learn(tags[i], generations[i]);
  }
  std::vector<std::string> missing;
  std::string_view judged;
  if (consistent && (set.judge(stored, judged, missing) != tag_set::verdict::current || judged != wrapped))
    std::abort();
  // Freshness outside tags is no layout cache.cpp writes; the reader must still not crash on it.
  const std::string reversed = wrap_fresh(until, w, stored);
  if (!unwrap_fresh(reversed, f, back) || back != stored) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  read_value(input);
  build_envelopes(data, size);
  return 0;
}
