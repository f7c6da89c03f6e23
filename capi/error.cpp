// SPDX-License-Identifier: MIT
// Thread-local last error, status names, and the exception guard.
#include <new>

#include "../core/error.hpp"
#include "guard.hpp"

namespace httpcache::capi {

namespace {

// Thread-local so that concurrent calls on one handle never see each other's errors.
thread_local std::string last_message = "no error";
thread_local httpcache_error last_error = {HTTPCACHE_OK, nullptr};

}  // namespace

void set_error(int code, const std::string& message) noexcept {
  try {
    last_message = message;
  } catch (...) {
    last_message.clear();  // out of memory: keep the code, lose the text
  }
  last_error.code = code;
}

void clear_error() noexcept {
  if (last_error.code == HTTPCACHE_OK) return;
  last_error.code = HTTPCACHE_OK;
  last_message.assign("no error");
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
  last_error.message = last_message.c_str();
  return &last_error;
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
