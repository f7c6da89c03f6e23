// SPDX-License-Identifier: MIT
// Status codes to Python exceptions, in one place (the pygit2 pattern): ENOTFOUND -> CacheMiss
// (a KeyError), EINVALID -> ValueError, ENOMEM -> MemoryError, anything else -> httpcache.Error.
// Error and CacheMiss carry the status in `.code`.
#include "binding.hpp"

namespace httpcache_py {

namespace {

// Created once in init_errors() and deliberately never released: exception types live as long as
// the interpreter, and a static py::object would be destroyed after Python finalizes.
PyObject* error_type = nullptr;
PyObject* cache_miss_type = nullptr;

PyObject* type_for(int code) {
  switch (code) {
    case HTTPCACHE_ENOTFOUND: return cache_miss_type;
    case HTTPCACHE_EINVALID: return PyExc_ValueError;
    case HTTPCACHE_ENOMEM: return PyExc_MemoryError;
    default: return error_type;
  }
}

}  // namespace

captured_error captured_error::last(int rc) {
  const httpcache_error* e = httpcache_error_last();
  captured_error c;
  c.code = rc;
  // The last error belongs to the failing call only if its code matches; otherwise describe rc.
  c.message = (e && e->code == rc && e->message && *e->message) ? e->message : httpcache_strerror(rc);
  return c;
}

void raise_captured(const captured_error& e, const std::string& context) {
  PyObject* type = type_for(e.code);
  std::string message = context.empty() ? e.message : context + ": " + e.message;
  py::object exc = py::reinterpret_borrow<py::object>(type)(message);
  if (type == error_type || type == cache_miss_type) py::setattr(exc, "code", py::int_(e.code));
  PyErr_SetObject(type, exc.ptr());
  throw py::error_already_set();
}

void raise_for(int rc, const std::string& context) { raise_captured(captured_error::last(rc), context); }

void init_errors(py::module_& m) {
  error_type = PyErr_NewExceptionWithDoc("httpcache.Error",
                                         "A failure reported by the httpcache C library; `.code` is the status.",
                                         PyExc_Exception, nullptr);
  if (!error_type) throw py::error_already_set();
  // A miss is a KeyError (the lookup found nothing) and an httpcache.Error.
  py::tuple bases = py::make_tuple(py::handle(error_type), py::handle(PyExc_KeyError));
  cache_miss_type = PyErr_NewExceptionWithDoc("httpcache.CacheMiss", "No live entry under the key.",
                                              bases.ptr(), nullptr);
  if (!cache_miss_type) throw py::error_already_set();
  // Class-level defaults; raise_captured() sets the instance's own code.
  py::setattr(error_type, "code", py::int_(static_cast<int>(HTTPCACHE_ERROR)));
  py::setattr(cache_miss_type, "code", py::int_(static_cast<int>(HTTPCACHE_ENOTFOUND)));
  m.add_object("Error", py::handle(error_type));
  m.add_object("CacheMiss", py::handle(cache_miss_type));

  m.attr("OK") = static_cast<int>(HTTPCACHE_OK);
  m.attr("ERROR") = static_cast<int>(HTTPCACHE_ERROR);
  m.attr("ENOTFOUND") = static_cast<int>(HTTPCACHE_ENOTFOUND);
  m.attr("EINVALID") = static_cast<int>(HTTPCACHE_EINVALID);
  m.attr("ENOMEM") = static_cast<int>(HTTPCACHE_ENOMEM);
  m.attr("EBUFS") = static_cast<int>(HTTPCACHE_EBUFS);
  m.attr("EUSER") = static_cast<int>(HTTPCACHE_EUSER);
  m.attr("EBACKEND") = static_cast<int>(HTTPCACHE_EBACKEND);
  m.attr("ETIMEOUT") = static_cast<int>(HTTPCACHE_ETIMEOUT);
  m.attr("EVERSION") = static_cast<int>(HTTPCACHE_EVERSION);
  m.attr("ECANCELED") = static_cast<int>(HTTPCACHE_ECANCELED);
  m.attr("ESTALE") = static_cast<int>(HTTPCACHE_ESTALE);

  m.def("strerror", [](int code) { return std::string(httpcache_strerror(code)); }, py::arg("code"),
        "A short description of a status code.");
  m.def("version_string", [] { return std::string(httpcache_version_string()); });
  m.def("version_number", [] { return httpcache_version_number(); });
  m.attr("HEADER_VERSION") = HTTPCACHE_VERSION_STRING;
  m.attr("MAX_KEY_BYTES") = HTTPCACHE_MAX_KEY_BYTES;
  m.attr("MAX_NAMESPACE_BYTES") = HTTPCACHE_MAX_NAMESPACE_BYTES;
  m.attr("MAX_TTL_SECONDS") = HTTPCACHE_MAX_TTL_SECONDS;
}

}  // namespace httpcache_py
