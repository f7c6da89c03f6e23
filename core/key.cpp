// SPDX-License-Identifier: MIT
#include "key.hpp"

#include <fmt/args.h>
#include <fmt/format.h>

#include "error.hpp"

namespace httpcache {

namespace {

bool is_namespace_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

// Counts replacement fields, skipping `{{` and `}}` escapes. fmt itself checks the rest of the
// syntax; we count so that surplus arguments are an error too (fmt ignores them).
std::size_t count_fields(std::string_view tmpl) {
  std::size_t fields = 0;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '{') {
      if (i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
        ++i;
        continue;
      }
      ++fields;
      while (i < tmpl.size() && tmpl[i] != '}') ++i;
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
