// SPDX-License-Identifier: MIT
// Keys: namespace validation, template filling and the `namespace:key` layout, in one place
// so that every language computes the same key bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace httpcache {

inline constexpr std::size_t max_namespace_bytes = 128;
inline constexpr std::size_t max_key_bytes = 4096;

// Throws error(errc::invalid) unless ns is 1..max_namespace_bytes of [A-Za-z0-9_.-].
// Forbidding ':' is what keeps `ns:key` from colliding with another namespace's keys.
void validate_namespace(std::string_view ns);

// Throws error(errc::invalid) for an empty or over-long key. Any bytes are allowed.
void validate_key(std::string_view key);

// Fills each `{}` (or `{N}`) field of tmpl with an argument, percent-encoded outside
// [A-Za-z0-9_-] so that no value can contain a template's separators; `{{` and `}}` are literal
// braces; fields with a spec are refused. The field count must equal args.size() and no
// argument may be empty: a missing value must never turn a per-user key into a shared one.
std::string format_key(std::string_view tmpl, const std::vector<std::string_view>& args);

// Appends value percent-encoded as format_key encodes a field (outside [A-Za-z0-9_-]).
void append_key_value(std::string& out, std::string_view value);

// `ns:key`, after validating key; the second form writes it into `out` (a buffer reused by a
// hot path).
std::string full_key(std::string_view ns, std::string_view key);
void full_key(std::string& out, std::string_view ns, std::string_view key);

}  // namespace httpcache
