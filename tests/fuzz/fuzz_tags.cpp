// SPDX-License-Identifier: MIT
// libFuzzer target: the tagged-entry envelope (core/tags.hpp). Any bytes under an entry's key (a
// foreign writer, a corrupted value) reach unwrap_tagged and tag_set::judge on every read: they
// must parse or be refused, never crash. What parses is exactly what wrap_tagged writes for the
// parsed stamps and payload (one encoding per envelope), and judge agrees with a model of its rule
// for tag sets naming some of the parsed tags and knowing their generations equal to the stamps,
// different, or not at all. The input (as is, and behind the envelope's prefix when it lacks it)
// is the value read; it also builds envelopes from scratch, which must come back exactly, refuse
// every truncation of their header, and be refused by wrap_tagged when a stamp is invalid.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/tags.hpp"

using namespace httpcache;

namespace {

// Deterministic choices per input (which tags a set names, which generations it knows).
struct choices {
  std::uint64_t state;
  explicit choices(std::string_view input) : state(1469598103934665603ULL) {
    for (unsigned char c : input) state = (state ^ c) * 1099511628211ULL;
    state |= 1;
  }
  unsigned next(unsigned n) {  // 0..n-1
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return static_cast<unsigned>(state % n);
  }
};

bool is_generation(std::string_view g) {
  if (g.size() != generation_bytes) return false;
  for (char c : g)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// A generation other than g: another valid one, an empty one (could not be read), or junk.
std::string different(std::string_view g, choices& pick) {
  std::string other(g);
  switch (pick.next(3)) {
    case 0:
      other[pick.next(generation_bytes)] ^= 1;  // '0'<->'1', 'a'<->'`'... never equal to g
      return other;
    case 1:
      return std::string();
    default:
      return other + "0";
  }
}

// What judge should say, computed from the parsed stamps and what the set knows.
tag_set::verdict expected_verdict(const std::vector<tag_stamp>& stamps, const tag_set& set,
                                  std::vector<std::string>& missing) {
  missing.clear();
  for (const auto& t : set.tags()) {
    bool stamped = false;
    for (const auto& s : stamps) stamped = stamped || s.tag == t;
    if (!stamped) return tag_set::verdict::stale;  // a named tag the entry does not carry
  }
  for (const auto& s : stamps) {
    auto g = set.generation(s.tag);
    if (!g || g->empty()) missing.emplace_back(s.tag);  // an unread generation is unknown, never a mismatch
    else if (*g != s.generation) return tag_set::verdict::stale;
  }
  return missing.empty() ? tag_set::verdict::current : tag_set::verdict::unknown;
}

void judge_envelope(std::string_view value, const std::vector<tag_stamp>& stamps, std::string_view payload,
                    choices& pick) {
  std::vector<std::string> distinct;
  for (const auto& s : stamps) {
    bool seen = false;
    for (const auto& d : distinct) seen = seen || d == s.tag;
    if (!seen) distinct.emplace_back(s.tag);
  }
  for (int round = 0; round < 4; ++round) {
    // Names: some of the stamped tags (a duplicate now and then), sometimes one it lacks.
    std::vector<std::string> names;
    for (const auto& d : distinct)
      if (pick.next(2)) names.push_back(d);
    if (!names.empty() && names.size() < max_tags && pick.next(4) == 0)
      names.push_back(names[pick.next(static_cast<unsigned>(names.size()))]);
    if (names.size() < max_tags && pick.next(8) == 0) {
      std::string absent("\x01" "absent");
      for (bool clash = true; clash;) {
        clash = false;
        for (const auto& d : distinct) clash = clash || d == absent;
        if (clash) absent += '!';
      }
      names.push_back(absent);
    }
    tag_set set(names);
    // Every stamped tag: unknown, the stamp's generation (its first stamp's), or another one.
    for (const auto& d : distinct) {
      std::string_view stamped;
      for (const auto& s : stamps)
        if (s.tag == d) {
          stamped = s.generation;
          break;
        }
      switch (pick.next(4)) {
        case 0:
          break;
        case 1:
          set.learn(d, different(stamped, pick));
          break;
        default:
          set.learn(d, std::string(stamped));
      }
    }
    // A generation known for a tag no stamp names changes nothing.
    if (pick.next(4) == 0) set.learn("\x02unrelated", std::string(generation_bytes, 'f'));

    std::vector<std::string> missing, want_missing;
    std::string_view got_payload;
    const tag_set::verdict v = set.judge(value, got_payload, missing);
    const tag_set::verdict want = expected_verdict(stamps, set, want_missing);
    if (v != want) std::abort();
    if (v != tag_set::verdict::stale && (got_payload.data() != payload.data() || got_payload.size() != payload.size()))
      std::abort();
    if (v == tag_set::verdict::unknown && missing != want_missing) std::abort();
    if (v == tag_set::verdict::current && !missing.empty()) std::abort();  // (a stale verdict may list some)

    // A set that knows all its generations stamps a value that it, and unwrap, read back.
    bool complete = true;
    for (const auto& t : set.tags()) {
      auto g = set.generation(t);
      complete = complete && g && is_generation(*g);
    }
    if (set.complete() != complete) std::abort();
    if (complete && !set.empty()) {
      const std::string stamped = set.wrap(payload);
      std::vector<tag_stamp> back;
      std::string_view back_payload;
      if (!unwrap_tagged(stamped, back, back_payload) || back_payload != payload) std::abort();
      if (back.size() != set.tags().size()) std::abort();
      for (std::size_t i = 0; i < back.size(); ++i)
        if (back[i].tag != set.tags()[i] || back[i].generation != *set.generation(set.tags()[i])) std::abort();
      std::string_view p;
      if (set.judge(stamped, p, missing) != tag_set::verdict::current || p != payload) std::abort();
    }
  }
}

// One value as a reader finds it under an entry's key.
void read_value(std::string_view value, choices& pick) {
  std::vector<tag_stamp> stamps;
  std::string_view payload;
  if (!unwrap_tagged(value, stamps, payload)) {
    if (!stamps.empty() && !is_tagged(value)) std::abort();  // an untagged value leaves no stamps
    std::string_view p;
    std::vector<std::string> missing;
    tag_set none;
    const tag_set::verdict v = none.judge(value, p, missing);
    if (is_tagged(value) ? v != tag_set::verdict::stale : (v != tag_set::verdict::current || p != value)) std::abort();
    if (!missing.empty()) std::abort();
    tag_set named({std::string("t")});
    named.learn("t", std::string(generation_bytes, '0'));
    if (named.judge(value, p, missing) != tag_set::verdict::stale) std::abort();  // untagged or malformed
    return;
  }
  if (!is_tagged(value) || stamps.empty() || stamps.size() > max_tags) std::abort();
  for (const auto& s : stamps)
    if (s.tag.empty() || s.tag.size() > max_tag_bytes || !is_generation(s.generation) || !inside(s.tag, value) ||
        !inside(s.generation, value))
      std::abort();
  if (!inside(payload, value) || payload.data() + payload.size() != value.data() + value.size()) std::abort();
  std::string again;
  try {
    again = wrap_tagged(stamps, payload);
  } catch (const error&) {
    std::abort();  // what parses is a valid stamp list
  }
  // One encoding: the parse read exactly what the writer writes (regressions/tags/leading_zero_*:
  // a count or length written with leading zeros, which wrap_tagged never writes).
  if (again != value) std::abort();
  judge_envelope(value, stamps, payload, pick);
}

constexpr char hex[] = "0123456789abcdef";

// Envelopes built from the input: valid ones round-trip, invalid stamp lists are refused.
void build_envelopes(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const unsigned flaw = in.ConsumeIntegralInRange<unsigned>(0, 15);  // 0..5: one flaw, else none
  std::size_t n = in.ConsumeIntegralInRange<std::size_t>(1, max_tags);
  if (flaw == 0) n = 0;
  if (flaw == 1) n = max_tags + 1;
  std::vector<std::string> tags, generations;
  for (std::size_t i = 0; i < n; ++i) {
    std::string tag = in.ConsumeRandomLengthString(max_tag_bytes);
    if (tag.empty()) tag.assign(1 + i % 3, static_cast<char>('a' + i % 26));
    if (in.ConsumeBool() && tag.size() < 64) tag.append(max_tag_bytes - tag.size() - i % 2, '\n');  // long ones
    std::string g;
    for (std::size_t j = 0; j < generation_bytes; ++j) g += hex[in.ConsumeIntegral<std::uint8_t>() & 15];
    tags.push_back(std::move(tag));
    generations.push_back(std::move(g));
  }
  const std::string payload = in.ConsumeRemainingBytesAsString();
  if (n > 0 && flaw >= 2 && flaw <= 5) {
    const std::size_t at = payload.size() % n;
    if (flaw == 2) tags[at].clear();
    if (flaw == 3) tags[at].assign(max_tag_bytes + 1, 't');
    if (flaw == 4) generations[at][payload.size() % generation_bytes] = 'A';
    if (flaw == 5) generations[at].pop_back();
  }
  std::vector<tag_stamp> stamps;
  for (std::size_t i = 0; i < n; ++i) stamps.push_back({tags[i], generations[i]});

  std::string wrapped;
  try {
    wrapped = wrap_tagged(stamps, payload);
  } catch (const error& e) {
    if (e.code() != errc::invalid || flaw > 5) std::abort();  // only a flawed list is refused
    return;
  }
  if (flaw <= 5) std::abort();  // a flawed list was written
  if (!is_tagged(wrapped)) std::abort();
  std::vector<tag_stamp> back;
  std::string_view back_payload;
  if (!unwrap_tagged(wrapped, back, back_payload) || back_payload != payload || back.size() != n) std::abort();
  for (std::size_t i = 0; i < n; ++i)
    if (back[i].tag != tags[i] || back[i].generation != generations[i]) std::abort();
  if (wrap_tagged(back, back_payload) != wrapped) std::abort();

  // Any cut inside the header is refused; bytes after it are payload.
  const std::size_t header = wrapped.size() - payload.size();
  std::vector<std::size_t> cuts{header - 1, tagged_prefix.size(), header / 2, payload.size() % header};
  if (header <= 256)
    for (std::size_t k = 0; k < header; ++k) cuts.push_back(k);
  for (std::size_t k : cuts)
    if (k < header && unwrap_tagged(std::string_view(wrapped).substr(0, k), back, back_payload)) std::abort();
  const std::string longer = wrapped + "\n0";
  if (!unwrap_tagged(longer, back, back_payload) || back_payload != payload + "\n0") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  choices pick(input);
  read_value(input, pick);
  if (!is_tagged(input)) read_value(std::string(tagged_prefix) + std::string(input), pick);
  build_envelopes(data, size);
  return 0;
}
