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
  stale = -11,  // a stale entry the caller should recompute (see stale.hpp)
};

class error : public std::runtime_error {
 public:
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

// A compute callback's failure, carrying its status unchanged through the core (the C API maps
// it back). Not derived from std::exception: it is no error of the library's.
struct compute_failed {
  int code;
};

// A backend failure: callers that fail open catch this one. An outage (unreachable, I/O, timeout,
// credentials refused, a server still loading) feeds the circuit breaker; a request the server
// answered with an error reply of its own (WRONGTYPE, a refused argument, an ACL denial of one
// command) does not: the server is up, and skipping it would fail the calls it can still serve.
class backend_error : public error {
 public:
  backend_error(errc code, const std::string& message, bool outage = true) : error(code, message), outage_(outage) {}
  bool outage() const noexcept { return outage_; }

 private:
  bool outage_;
};

}  // namespace httpcache
