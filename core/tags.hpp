// SPDX-License-Identifier: MIT
// Tags: invalidating a group of entries in O(1) per tag, on one server, Sentinel or a cluster,
// with no KEYS or SCAN (docs/design.md "Tags").
//
// Each tag has a generation: a random value stored under the tag's own key
// (`httpcache-tag!<ns>:<tag>`). An entry stored under tags carries, in an envelope before its
// value, each tag's generation as read before its computation began; invalidating a tag gives
// it a new generation, so every entry stamped with the old one reads as a miss from then on. A
// reader that names the tags reads their generations in the same pipeline as the entry (no
// extra round trip on a hit); a reader that does not gets them from the envelope's list, in one
// more round trip. A reader that finds a tag without a generation creates one (SET NX) in that
// same pipeline, so an entry is never stamped with "no generation": a tag key that is evicted
// or expires makes its entries miss instead of bringing back ones it had invalidated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace httpcache {

// A tagged entry starts with these bytes; the setters refuse values that do (like leases').
inline constexpr std::string_view tagged_prefix{"\0httpcache-tags\0", 16};
inline constexpr std::size_t max_tags = 32;
inline constexpr std::size_t max_tag_bytes = 1024;
inline constexpr std::size_t generation_bytes = 32;  // lowercase hex of 128 random bits
// A tag's generation lives this long after it was created or last invalidated; entries stamped
// with a generation that expired miss (and are computed again under a new one).
inline constexpr std::int64_t tag_ttl_ms = 30LL * 24 * 3600 * 1000;

inline bool is_tagged(std::string_view value) noexcept {
  return value.size() >= tagged_prefix.size() && value.substr(0, tagged_prefix.size()) == tagged_prefix;
}

// Throws error(errc::invalid) unless tag is 1..max_tag_bytes (any bytes).
void validate_tag(std::string_view tag);
// What every tag key of namespace ns starts with: `httpcache-tag!<ns>:`.
std::string tag_key_prefix(std::string_view ns);
// `httpcache-tag!<ns>:<tag>`: '!' is no namespace character, so it collides with no entry.
std::string tag_key(std::string_view ns, std::string_view tag);
// A new generation (generation_bytes of hex).
std::string make_generation();

struct tag_stamp {
  std::string_view tag;
  std::string_view generation;
};

// The envelope: tagged_prefix, "<n>\n", then n times "<tag length>\n<tag><generation>", then
// the value. Tags are 1..max_tags, each validated.
std::string wrap_tagged(const std::vector<tag_stamp>& stamps, std::string_view value);

// Parses an envelope (value must start with tagged_prefix): false when it is malformed. The
// views point into value.
bool unwrap_tagged(std::string_view value, std::vector<tag_stamp>& stamps, std::string_view& payload);

// The tags one call names and the generations it has read for them (and for any other tag an
// envelope named). A generation is empty when it could not be read or created.
class tag_set {
 public:
  tag_set() = default;
  explicit tag_set(std::vector<std::string> tags);  // validates; duplicates are dropped

  const std::vector<std::string>& tags() const noexcept { return tags_; }
  bool empty() const noexcept { return tags_.empty(); }
  // The generation read for tag, or nullopt when none was read for it.
  std::optional<std::string_view> generation(std::string_view tag) const;
  void learn(std::string_view tag, std::string generation);
  // Drops what was read: complete() is false, so nothing computed now will be stored.
  void forget_generations() { known_.clear(); }
  // Every named tag has a generation: an entry computed now may be stored, stamped with them.
  bool complete() const;
  // The generations read for the named tags, in order (which flights a caller may join).
  std::string signature() const;
  std::string wrap(std::string_view value) const;

  // What a stored value means to this call (a generation that could not be read counts as
  // unknown, never as a mismatch): current (payload is the value inside the envelope,
  // or the whole value when it has none), stale, or unknown (some stamped tags have no
  // generation known yet: `missing` lists them). Current means every stamp matches the
  // generation known for its tag and, for a call naming tags, that each of them is stamped: an
  // entry without them (stored before the tags were added, or by a writer that named none)
  // would outlive their invalidation. A malformed envelope is stale.
  enum class verdict { current, stale, unknown };
  verdict judge(std::string_view value, std::string_view& payload, std::vector<std::string>& missing) const;

 private:
  std::vector<std::string> tags_;
  std::vector<std::pair<std::string, std::string>> known_;  // tag -> generation (small: linear)
};

}  // namespace httpcache
