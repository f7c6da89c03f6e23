// SPDX-License-Identifier: MIT
#include "tags.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "backend.hpp"  // make_lease_placeholder: the same fork-safe randomness
#include "error.hpp"
#include "key.hpp"

namespace httpcache {

void validate_tag(std::string_view tag) {
  if (tag.empty()) throw error(errc::invalid, "tag is empty");
  if (tag.size() > max_tag_bytes)
    throw error(errc::invalid, fmt::format("tag is {} bytes, over the limit of {}", tag.size(), max_tag_bytes));
}

std::string tag_key_prefix(std::string_view ns) {
  std::string out("httpcache-tag!");
  out.append(ns).append(1, ':');
  return out;
}

std::string tag_key(std::string_view ns, std::string_view tag) {
  validate_tag(tag);
  return tag_key_prefix(ns).append(tag);
}

std::string make_generation() {
  // A lease placeholder ends in 32 hex digits from a per-process, fork-safe generator.
  std::string p = make_lease_placeholder();
  return p.substr(p.size() - generation_bytes);
}

namespace {

bool is_generation(std::string_view g) {
  return g.size() == generation_bytes &&
         std::all_of(g.begin(), g.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A decimal number ending at '\n' at the front of `in` (consumed), at most `limit`.
bool take_number(std::string_view& in, std::size_t limit, std::size_t& n) {
  auto nl = in.find('\n');
  if (nl == std::string_view::npos || nl == 0 || nl > 4 || (nl > 1 && in[0] == '0')) return false;  // one encoding
  auto [end, ec] = std::from_chars(in.data(), in.data() + nl, n);
  if (ec != std::errc() || end != in.data() + nl || n > limit) return false;
  in.remove_prefix(nl + 1);
  return true;
}

}  // namespace

std::string wrap_tagged(const std::vector<tag_stamp>& stamps, std::string_view value) {
  if (stamps.empty() || stamps.size() > max_tags) throw error(errc::invalid, fmt::format("an entry has 1..{} tags", max_tags));
  std::string out(tagged_prefix);
  out += fmt::format("{}\n", stamps.size());
  for (const auto& s : stamps) {
    validate_tag(s.tag);
    if (!is_generation(s.generation)) throw error(errc::invalid, "a tag generation is malformed");
    out += fmt::format("{}\n", s.tag.size());
    out.append(s.tag).append(s.generation);
  }
  out.append(value);
  return out;
}

bool unwrap_tagged(std::string_view value, std::vector<tag_stamp>& stamps, std::string_view& payload) {
  stamps.clear();
  if (!is_tagged(value)) return false;
  std::string_view in = value.substr(tagged_prefix.size());
  std::size_t n = 0;
  if (!take_number(in, max_tags, n) || n == 0) return false;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t len = 0;
    if (!take_number(in, max_tag_bytes, len) || len == 0 || in.size() < len + generation_bytes) return false;
    tag_stamp s{in.substr(0, len), in.substr(len, generation_bytes)};
    if (!is_generation(s.generation)) return false;
    stamps.push_back(s);
    in.remove_prefix(len + generation_bytes);
  }
  payload = in;
  return true;
}

tag_set::tag_set(std::vector<std::string> tags) {
  if (tags.size() > max_tags) throw error(errc::invalid, fmt::format("{} tags, over the limit of {}", tags.size(), max_tags));
  for (auto& t : tags) {
    validate_tag(t);
    if (std::find(tags_.begin(), tags_.end(), t) == tags_.end()) tags_.push_back(std::move(t));
  }
}

std::optional<std::string_view> tag_set::generation(std::string_view tag) const {
  for (const auto& [t, g] : known_)
    if (t == tag) return std::string_view(g);
  return std::nullopt;
}

void tag_set::learn(std::string_view tag, std::string generation) {
  for (auto& [t, g] : known_)
    if (t == tag) {
      g = std::move(generation);
      return;
    }
  known_.emplace_back(std::string(tag), std::move(generation));
}

bool tag_set::complete() const {
  return std::all_of(tags_.begin(), tags_.end(), [&](const std::string& t) {
    auto g = generation(t);
    return g && is_generation(*g);
  });
}

std::string tag_set::signature() const {
  std::string out;
  for (const auto& t : tags_) {
    auto g = generation(t);
    out.append(g ? *g : std::string_view("-")).append(1, ',');
  }
  return out;
}

std::string tag_set::wrap(std::string_view value) const {
  std::vector<tag_stamp> stamps;
  for (const auto& t : tags_) stamps.push_back({t, *generation(t)});
  return wrap_tagged(stamps, value);
}

tag_set::verdict tag_set::judge(std::string_view value, std::string_view& payload,
                                std::vector<std::string>& missing) const {
  missing.clear();
  if (!is_tagged(value)) {
    payload = value;
    return tags_.empty() ? verdict::current : verdict::stale;
  }
  std::vector<tag_stamp> stamps;
  if (!unwrap_tagged(value, stamps, payload)) return verdict::stale;
  for (const auto& t : tags_)
    if (std::none_of(stamps.begin(), stamps.end(), [&](const tag_stamp& s) { return s.tag == t; })) return verdict::stale;
  for (const auto& s : stamps) {
    auto g = generation(s.tag);
    if (!g || g->empty()) missing.emplace_back(s.tag);  // none read yet, or it could not be read
    else if (*g != s.generation) return verdict::stale;
  }
  return missing.empty() ? verdict::current : verdict::unknown;
}

}  // namespace httpcache

namespace httpcache {

lookup_result backend::get_stamped(std::string_view key, const std::vector<std::string_view>& tag_keys,
                                   const std::vector<std::string>& candidates, std::vector<std::string>& generations) {
  lookup_result r;
  if (!key.empty()) r = get(key);
  generations.assign(tag_keys.size(), std::string());
  for (std::size_t i = 0; i < tag_keys.size(); ++i) {
    lease_result l = lease(tag_keys[i], candidates[i], tag_ttl_ms);
    if (l.granted) generations[i] = candidates[i];
    else if (l.current.found) generations[i] = std::move(l.current.value);
  }
  return r;
}

}  // namespace httpcache
