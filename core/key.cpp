// SPDX-License-Identifier: MIT
#include "key.hpp"

#include <algorithm>

#include <fmt/args.h>
#include <fmt/format.h>

#include "error.hpp"

namespace httpcache {

namespace {

bool is_namespace_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

// The sum of the numbers in a field's spec (widths, precisions, indexes), saturated just over
// the key limit. fmt pads to a width before we can check the key's size, so `{:2000000000}`
// would allocate 2 GB (found by fuzz_key), and many fields of a legal width would add up alike.
std::size_t field_numbers(std::string_view field) {
  std::size_t total = 0, value = 0;
  for (char c : field) {
    if (c >= '0' && c <= '9') {
      value = std::min<std::size_t>(value * 10 + static_cast<std::size_t>(c - '0'), max_key_bytes + 1);
    } else {
      total += value;
      value = 0;
    }
  }
  return std::min<std::size_t>(total + value, max_key_bytes + 1);
}

// Counts replacement fields, skipping `{{` and `}}` escapes, and refuses numbers in them that
// add up to more than a key can hold (no key can be longer than the limit anyway). fmt itself
// checks the rest of the syntax; we count so that surplus arguments are an error too (fmt
// ignores them).
std::size_t count_fields(std::string_view tmpl) {
  std::size_t fields = 0, numbers = 0;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '{') {
      if (i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
        ++i;
        continue;
      }
      ++fields;
      std::size_t start = i + 1;
      while (i < tmpl.size() && tmpl[i] != '}') ++i;
      numbers += field_numbers(tmpl.substr(start, i - start));
      if (numbers > max_key_bytes)
        throw error(errc::invalid, fmt::format("key template fields ask for widths over the key limit of {} bytes",
                                               max_key_bytes));
    } else if (tmpl[i] == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
      ++i;
    }
  }
  return fields;
}

}  // namespace

void validate_namespace(std::string_view ns) {
  if (ns.empty()) throw error(errc::invalid, "namespace is empty");
  if (ns.size() > max_namespace_bytes)
    throw error(errc::invalid, fmt::format("namespace is {} bytes, over the limit of {}", ns.size(),
                                           max_namespace_bytes));
  for (char c : ns) {
    if (!is_namespace_char(c))
      throw error(errc::invalid,
                  "namespace may contain only letters, digits, '_', '-' and '.' (':' would let keys collide)");
  }
}

void validate_key(std::string_view key) {
  if (key.empty()) throw error(errc::invalid, "key is empty");
  if (key.size() > max_key_bytes)
    throw error(errc::invalid, fmt::format("key is {} bytes, over the limit of {}", key.size(), max_key_bytes));
}

std::string format_key(std::string_view tmpl, const std::vector<std::string_view>& args) {
  std::size_t fields = count_fields(tmpl);
  if (fields != args.size())
    throw error(errc::invalid, fmt::format("key template has {} field(s) but {} argument(s) were given", fields,
                                           args.size()));
  std::string key;
  try {
    fmt::dynamic_format_arg_store<fmt::format_context> store;
    for (auto arg : args) store.push_back(fmt::string_view(arg.data(), arg.size()));
    key = fmt::vformat(fmt::string_view(tmpl.data(), tmpl.size()), store);
  } catch (const fmt::format_error& e) {
    throw error(errc::invalid, fmt::format("malformed key template: {}", e.what()));
  }
  validate_key(key);
  return key;
}

std::string full_key(std::string_view ns, std::string_view key) {
  validate_key(key);
  std::string out;
  out.reserve(ns.size() + 1 + key.size());
  out.append(ns).append(1, ':').append(key);
  return out;
}

}  // namespace httpcache
