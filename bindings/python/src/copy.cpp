// SPDX-License-Identifier: MIT
// copy_json: an independent copy of a decoded JSON value, for hits served from a value decoded
// once (httpcache._codec.ValueMemo): every dict and list is new, so no caller's change reaches
// another caller; str, int, float, bool and None are shared, as they cannot change. The cheapest
// independent copy there is (docs/design.md "Near tier" has the measurements against
// json.loads, marshal and deepcopy): no parsing, no new leaf objects.
#include "binding.hpp"

namespace httpcache_py {

namespace {

// Deep enough for any JSON a handler returns; a deeper value raises RecursionError, and the
// callers then hand out a fresh decode instead (ValueMemo.decode, peek).
constexpr int max_depth = 512;

PyObject* copy_value(PyObject* v, int depth);

PyObject* copy_dict(PyObject* d, int depth) {
  PyObject* out = _PyDict_NewPresized(PyDict_GET_SIZE(d));
  if (!out) return nullptr;
  Py_ssize_t pos = 0;
  PyObject *k, *item;
  while (PyDict_Next(d, &pos, &k, &item)) {
    PyObject* c = copy_value(item, depth + 1);
    if (!c || PyDict_SetItem(out, k, c) < 0) {
      Py_XDECREF(c);
      Py_DECREF(out);
      return nullptr;
    }
    Py_DECREF(c);
  }
  return out;
}

PyObject* copy_list(PyObject* l, int depth) {
  const Py_ssize_t n = PyList_GET_SIZE(l);
  PyObject* out = PyList_New(n);
  if (!out) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* c = copy_value(PyList_GET_ITEM(l, i), depth + 1);
    if (!c) {
      Py_DECREF(out);
      return nullptr;
    }
    PyList_SET_ITEM(out, i, c);  // steals c
  }
  return out;
}

PyObject* copy_value(PyObject* v, int depth) {
  if (depth > max_depth) {
    PyErr_SetString(PyExc_RecursionError, "copy_json: value nested too deeply");
    return nullptr;
  }
  if (PyDict_CheckExact(v)) return copy_dict(v, depth);
  if (PyList_CheckExact(v)) return copy_list(v, depth);
  if (PyUnicode_CheckExact(v) || PyLong_CheckExact(v) || PyFloat_CheckExact(v) || PyBool_Check(v) || v == Py_None) {
    Py_INCREF(v);
    return v;
  }
  PyErr_Format(PyExc_TypeError, "copy_json: %.100s is not a decoded JSON value", Py_TYPE(v)->tp_name);
  return nullptr;
}

PyObject* copy_json(PyObject*, PyObject* v) { return copy_value(v, 0); }

PyMethodDef copy_json_def = {"copy_json", copy_json, METH_O,
                             "An independent copy of a decoded JSON value: new dicts and lists, shared "
                             "str/int/float/bool/None. TypeError for anything json.loads does not make."};

}  // namespace

PyObject* copy_json_value(PyObject* v) { return copy_value(v, 0); }

void init_copy(py::module_& m) {
  // A plain C function (METH_O): a hit calls it once, so pybind11's argument dispatch would cost
  // more than the copy of a small value.
  PyObject* f = PyCFunction_NewEx(&copy_json_def, nullptr, m.ptr());
  if (!f) throw py::error_already_set();
  m.add_object("copy_json", py::reinterpret_steal<py::object>(f));
}

}  // namespace httpcache_py
