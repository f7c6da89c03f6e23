// SPDX-License-Identifier: MIT
// Thread-local last error, status names, and the exception guard.
#include <new>

#include "../core/error.hpp"
#include "../core/thread_state.hpp"
#include "guard.hpp"

namespace httpcache::capi {

namespace {

// Per thread, so that concurrent calls on one handle never see each other's errors.
struct last_error_state {
  std::string message = "no error";
  httpcache_error error = {HTTPCACHE_OK, nullptr};
};

last_error_state& last() { return thread_state<last_error_state, last_error_state>(); }

}  // namespace

void set_error(int code, const std::string& message) noexcept {
  last_error_state& l = last();
  try {
    l.message = message;
  } catch (...) {
    l.message.clear();  // out of memory: keep the code, lose the text
  }
  l.error.code = code;
}

void clear_error() noexcept {
  last_error_state& l = last();
  if (l.error.code == HTTPCACHE_OK) return;
  l.error.code = HTTPCACHE_OK;
  l.message.assign("no error");
}

int guard_impl(void (*thunk)(void*), void* body) noexcept {
  try {
    thunk(body);
    clear_error();
    return HTTPCACHE_OK;
  } catch (const callback_failed& f) {
    int code = f.code < 0 ? f.code : HTTPCACHE_EUSER;
    set_error(code, "the compute callback failed (returned " + std::to_string(f.code) + ")");
    return code;
  } catch (const httpcache::error& e) {
    set_error(static_cast<int>(e.code()), e.what());
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    set_error(HTTPCACHE_ENOMEM, "out of memory");
    return HTTPCACHE_ENOMEM;
  } catch (const std::exception& e) {
    set_error(HTTPCACHE_ERROR, std::string("internal error: ") + e.what());
    return HTTPCACHE_ERROR;
  } catch (...) {
    set_error(HTTPCACHE_ERROR, "internal error: unknown exception");
    return HTTPCACHE_ERROR;
  }
}

}  // namespace httpcache::capi

using namespace httpcache::capi;

extern "C" {

const httpcache_error* httpcache_error_last(void) {
  last_error_state& l = last();
  l.error.message = l.message.c_str();
  return &l.error;
}

const char* httpcache_strerror(int code) {
  switch (code) {
    case HTTPCACHE_OK: return "success";
    case HTTPCACHE_ERROR: return "internal error";
    case HTTPCACHE_ENOTFOUND: return "cache miss";
    case HTTPCACHE_EINVALID: return "invalid argument";
    case HTTPCACHE_ENOMEM: return "out of memory";
    case HTTPCACHE_EBUFS: return "buffer too small";
    case HTTPCACHE_EUSER: return "callback failed";
    case HTTPCACHE_EBACKEND: return "cache backend unavailable";
    case HTTPCACHE_ETIMEOUT: return "cache backend timed out";
    case HTTPCACHE_EVERSION: return "unsupported options version";
    case HTTPCACHE_ECANCELED: return "request canceled";
    default: return "unknown error";
  }
}

}  // extern "C"
