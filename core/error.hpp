// SPDX-License-Identifier: MIT
// The core's one exception type; capi/ maps it to status codes at the ABI edge.
#pragma once

#include <stdexcept>
#include <string>

namespace httpcache {

// Values match the public httpcache_error_code so the mapping is the identity,
// but the core does not include the C header.
enum class errc : int {
  generic = -1,
  not_found = -2,
  invalid = -3,
  no_memory = -4,
  buffer_too_small = -5,
  user = -6,
  backend = -7,
  timeout = -8,
  version = -9,
  canceled = -10,
};

class error : public std::runtime_error {
 public:
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

// A backend failure (unreachable, I/O, timeout): callers that fail open catch this one.
class backend_error : public error {
 public:
  using error::error;
};

}  // namespace httpcache
