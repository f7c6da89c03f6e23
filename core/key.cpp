// SPDX-License-Identifier: MIT
#include "key.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "error.hpp"

namespace httpcache {

namespace {

bool is_namespace_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

// Filled-in values are percent-encoded except for this small safe set, so the encoding is
// injective and a value can never contain a separator a template uses (`:`, `.`, `/`, `{`, ...):
// a user id cannot make one template's key equal another's. Plain ids (letters, digits, `_`, `-`)
// keep the text they always had, so existing keys such as `b.logged_in.112358` are unchanged.
bool is_safe_value_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

void append_encoded(std::string& out, std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (is_safe_value_byte(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
}

[[noreturn]] void malformed(std::string_view why) {
  throw error(errc::invalid, fmt::format("malformed key template: {}", why));
}

// The argument index of the field whose text (between the braces) is `field`: `{}` takes the
// next one, `{N}` the Nth; the two styles cannot mix. Anything else (a width, a precision, a
// conversion, a name) is refused: `{:.2}` would give `alice1` and `alice2` one key.
std::size_t field_index(std::string_view field, std::size_t& next_auto, bool& manual, std::size_t nargs) {
  if (field.empty()) {
    if (manual) malformed("cannot switch from manual field numbering ({0}) to automatic ({})");
    return next_auto++;
  }
  std::size_t n = 0;
  for (char c : field) {
    if (c < '0' || c > '9')
      throw error(errc::invalid, fmt::format("key template field {{{}}} is refused: only {{}} and {{N}} fields are "
                                             "allowed (a format spec could give different values one key)",
                                             field.substr(0, 32)));
    n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(c - '0'), nargs + 1);
  }
  if (next_auto > 0) malformed("cannot switch from automatic field numbering ({}) to manual ({0})");
  manual = true;
  return n;
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
  std::string key;
  std::size_t fields = 0, next_auto = 0;
  bool manual = false, missing = false;
  // Injective for several fields too: each argument is used (so no value is ignored), and two
  // fields are separated by a literal byte no encoded value contains (so `{}{}` cannot give
  // "a"+"bc" and "ab"+"c" one key). The first such byte after a field marks where it ended.
  std::vector<bool> used(args.size(), false);
  bool separated = true;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (c == '}') {
      if (i + 1 >= tmpl.size() || tmpl[i + 1] != '}') malformed("unmatched '}' (write '}}' for a literal brace)");
      key.push_back('}');
      separated = true;
      ++i;
    } else if (c != '{') {
      key.push_back(c);
      if (!is_safe_value_byte(static_cast<unsigned char>(c)) && c != '%') separated = true;
    } else if (i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      key.push_back('{');
      separated = true;
      ++i;
    } else {
      std::size_t end = tmpl.find('}', i + 1);
      if (end == std::string_view::npos) malformed("unmatched '{' (write '{{' for a literal brace)");
      std::size_t index = field_index(tmpl.substr(i + 1, end - i - 1), next_auto, manual, args.size());
      ++fields;
      if (!separated)
        malformed("two fields need a separator between them: a byte other than a letter, a digit, '_', '-' "
                  "or '%' (values may contain those, so the key could not tell where one value ends)");
      separated = false;
      if (index < args.size()) {
        if (args[index].empty()) throw error(errc::invalid, "a key template value is empty");
        if (key.size() + args[index].size() > max_key_bytes)  // encoding only makes it longer
          throw error(errc::invalid, fmt::format("key is over the limit of {} bytes", max_key_bytes));
        append_encoded(key, args[index]);
        used[index] = true;
      } else {
        missing = true;  // reported below, after counting every field
      }
      i = end;
    }
    if (key.size() > max_key_bytes) validate_key(key);  // throws: no need to build more
  }
  if (fields != args.size() || missing)
    throw error(errc::invalid, fmt::format("key template has {} field(s) but {} argument(s) were given", fields,
                                           args.size()));
  for (std::size_t a = 0; a < used.size(); ++a)
    if (!used[a]) throw error(errc::invalid, fmt::format("key template never uses argument {} (each must appear once)", a));
  validate_key(key);
  return key;
}

void append_key_value(std::string& out, std::string_view value) { append_encoded(out, value); }

void full_key(std::string& out, std::string_view ns, std::string_view key) {
  validate_key(key);
  out.reserve(ns.size() + 1 + key.size());
  out.assign(ns).append(1, ':').append(key);
}

std::string full_key(std::string_view ns, std::string_view key) {
  std::string out;
  full_key(out, ns, key);
  return out;
}

}  // namespace httpcache
