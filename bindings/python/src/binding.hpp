// SPDX-License-Identifier: MIT
// Shared pieces of the httpcache._httpcache extension: RAII holders of the C handles, the one
// status-to-exception mapping, and the per-area init functions that module.cpp calls.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>

#include "httpcache.h"

namespace py = pybind11;

namespace httpcache_py {

// module.cpp calls these once each, in this order: errors first, because every other area
// raises through raise_for().
void init_errors(py::module_& m);
void init_ttl(py::module_& m);
void init_keys(py::module_& m);
void init_cache(py::module_& m);
void init_async(py::module_& m);
void init_response(py::module_& m);
void init_copy(py::module_& m);
void init_hit_path(py::module_& m);

// copy.cpp: an independent copy of a decoded JSON value (new reference), or null with a Python
// error set. GIL held.
PyObject* copy_json_value(PyObject* v);

// Raises the Python exception for a failed status `rc`, with httpcache_error_last()'s message.
// Must run on the thread that made the failing call, before any other httpcache call, and with
// the GIL held. `context` (may be empty) is prefixed to the message.
[[noreturn]] void raise_for(int rc, const std::string& context = std::string());

// Reads httpcache_error_last() now (the GIL may be released): the message is thread-local and
// overwritten by the next call, so blocking wrappers capture it before re-acquiring the GIL.
struct captured_error {
  int code = HTTPCACHE_OK;
  std::string message;
  static captured_error last(int rc);
  bool failed() const { return code != HTTPCACHE_OK; }
  // Raises it (see raise_captured) if it is a failure. GIL held.
  inline void raise_if_failed(const std::string& context = std::string()) const;
};
[[noreturn]] void raise_captured(const captured_error& e, const std::string& context = std::string());

void captured_error::raise_if_failed(const std::string& context) const {
  if (failed()) raise_captured(*this, context);
}

// Runs `call` (a C call returning a status; it must not touch Python objects) with the GIL
// released, and returns its failure, captured on this thread before the GIL is re-acquired (code
// HTTPCACHE_OK on success). For callers with something to check before raising; others use nogil().
// An explicit scope, not call_guard<gil_scoped_release> (reported to crash on py::init).
template <typename Call>
captured_error call_nogil(Call&& call) {
  captured_error err;
  {
    py::gil_scoped_release released;
    int rc = call();
    if (rc != HTTPCACHE_OK) err = captured_error::last(rc);
  }
  return err;
}

// call_nogil(), then raises the failure, if any, with the GIL held again.
template <typename Call>
void nogil(Call&& call) {
  call_nogil(std::forward<Call>(call)).raise_if_failed();
}

// An httpcache_buf that disposes itself.
struct owned_buf {
  httpcache_buf buf = HTTPCACHE_BUF_INIT;
  owned_buf() = default;
  owned_buf(const owned_buf&) = delete;
  owned_buf& operator=(const owned_buf&) = delete;
  ~owned_buf() { httpcache_buf_dispose(&buf); }
  py::bytes to_bytes() const { return py::bytes(buf.ptr ? buf.ptr : "", buf.size); }
};

// A cache handle shared by its Python object, every blocking call in flight (each copies the
// pointer before releasing the GIL, so close() never frees a handle another thread is using) and
// every async context opened on it (the C ABI requires the handle to outlive them).
using cache_ptr = std::shared_ptr<httpcache_cache>;

// A TTL policy as Python sees it (httpcache._httpcache.Policy); converted to the C struct for the
// duration of one call. For TTL_CALLBACK the Python callable is called with the GIL re-acquired.
struct policy {
  int kind = HTTPCACHE_TTL_END_OF_DAY;
  int64_t seconds = 0;
  py::object callback;  // None unless kind == TTL_CALLBACK
  httpcache_ttl_policy to_c() const;
};

}  // namespace httpcache_py
