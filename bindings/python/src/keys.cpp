// SPDX-License-Identifier: MIT
// Key templates (httpcache_key_format): one implementation for every language. A plain
// METH_FASTCALL function: every call of a decorated function with a per-call key fills one, so
// pybind11's conversion of the argument list would cost more than the formatting.
#include <vector>

#include "binding.hpp"

namespace httpcache_py {

namespace {

PyObject* key_format(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyBytes_Check(args[0]) || !(PyList_Check(args[1]) || PyTuple_Check(args[1]))) {
    PyErr_SetString(PyExc_TypeError, "key_format(template: bytes, args: list[bytes])");
    return nullptr;
  }
  PyObject* seq = args[1];
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  httpcache_slice few[4];
  std::vector<httpcache_slice> many;
  httpcache_slice* slices = few;
  if (n > 4) {
    many.resize(static_cast<std::size_t>(n));
    slices = many.data();
  }
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* a = PySequence_Fast_GET_ITEM(seq, i);  // borrowed: seq holds it during this call
    if (!PyBytes_Check(a)) {
      PyErr_Format(PyExc_TypeError, "key_format: argument %zd is %.100s, not bytes", i, Py_TYPE(a)->tp_name);
      return nullptr;
    }
    slices[i] = httpcache_slice{PyBytes_AS_STRING(a), static_cast<size_t>(PyBytes_GET_SIZE(a))};
  }
  owned_buf out;
  const int rc = httpcache_key_format(&out.buf, PyBytes_AS_STRING(args[0]), static_cast<size_t>(PyBytes_GET_SIZE(args[0])),
                                      slices, static_cast<size_t>(n));
  if (rc != HTTPCACHE_OK) {
    try {
      raise_for(rc);
    } catch (py::error_already_set& e) {
      e.restore();
    } catch (const py::builtin_exception& e) {
      e.set_error();
    }
    return nullptr;
  }
  return PyBytes_FromStringAndSize(out.buf.ptr, static_cast<Py_ssize_t>(out.buf.size));
}

PyMethodDef key_format_def = {
    "key_format", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(key_format)), METH_FASTCALL,
    "key_format(template, args): fills each `{}` of a key template with the next argument (bytes). "
    "ValueError for a malformed template, a field/argument count mismatch, an empty or over-long key."};

}  // namespace

void init_keys(py::module_& m) {
  PyObject* f = PyCFunction_NewEx(&key_format_def, nullptr, m.ptr());
  if (!f) throw py::error_already_set();
  m.add_object("key_format", py::reinterpret_steal<py::object>(f));
}

}  // namespace httpcache_py
