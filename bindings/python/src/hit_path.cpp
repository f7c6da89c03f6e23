// SPDX-License-Identifier: MIT
// httpcache._httpcache.HitPath: the hit of a fixed-key @cache function answered in one C call,
// when this process holds the entry (the near tier, memory://) and it is the value the function
// last decoded. The Python wrapper asks it first; anything it cannot answer alone (another value,
// no entry, a conditional request, caching turned off or re-initialised) comes back as the
// package's MISS and the normal path runs, which arms it again for the value it then serves.
//
// Why it is safe to hand out what it holds: it is armed with a value's version
// (httpcache_cache_peek_version), and every hit asks the store whether that version is still the
// one held; a new value, even with the same bytes, has a new version. Each caller gets its own
// object: a copy_json copy of a plain value, or a new response object with its own header list.
//
// Why C: a near hit's cost is a few attribute reads and calls; written in Python they cost more
// than the lookup and the copy (docs/design.md "Near tier"). A plain METH_O method, no pybind11
// dispatch. Every method runs with the GIL held; the call never blocks (peek does no I/O).
#include <atomic>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include "cache_object.hpp"

namespace httpcache_py {

namespace {

// Bumped by disarm_all() (HTTPCache's settings changed) and when a handle closes: a HitPath armed
// under another epoch answers MISS until the normal path arms it again.
std::atomic<std::uint64_t> epoch{1};

enum class mode { off, value, response };

struct armed_state {
  cache_ptr cache;
  std::string key;
  std::uint64_t version = 0;
  std::uint64_t epoch = 0;
  mode kind = mode::off;
  PyObject* decoded = nullptr;   // value: the decoded value (never handed out); response: its type
  PyObject* fields = nullptr;    // response: the template's attributes but raw_headers (a dict)
  PyObject* headers = nullptr;   // response: the template's raw headers then the hit's (a list)
  double until = 0;              // response: wall time (s) the hit's headers are good until
  PyObject* request_param = nullptr;   // names of FastAPI's injected Request and Response, or null
  PyObject* response_param = nullptr;
  PyObject* endpoint = nullptr;  // response: what the early hits learn a served key under (note_response)
  PyObject* ns = nullptr;
  bool honor_no_cache = false;   // a request's Cache-Control/Pragma may ask to revalidate
};

struct hit_path {
  PyObject_HEAD
  PyObject* miss;  // the package's MISS
  PyObject* learning;  // the early hits' ContextVar: a request it has a verdict for goes the normal way
  armed_state* state;
};

void clear_state(armed_state& s) {
  Py_CLEAR(s.decoded);
  Py_CLEAR(s.fields);
  Py_CLEAR(s.headers);
  Py_CLEAR(s.request_param);
  Py_CLEAR(s.response_param);
  Py_CLEAR(s.endpoint);
  Py_CLEAR(s.ns);
  s.cache.reset();
  s.kind = mode::off;
}

double wall_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Whether the store still holds the armed version (a hit, counted); anything else is not counted:
// the normal path that follows reads and counts it.
bool unchanged(const armed_state& s) {
  std::uint64_t version = 0;
  return httpcache_cache_peek_version(nullptr, nullptr, &version, s.cache.get(), s.key.data(), s.key.size(),
                                      s.version) == HTTPCACHE_OK &&
         version == s.version;
}

PyObject* miss_of(hit_path* self) {
  Py_INCREF(self->miss);
  return self->miss;
}

int scope_needs_normal_path(const armed_state& s, PyObject* scope);

// For a request HTTPCache.attach() saw: 1 when its early GET left a verdict (the normal path takes
// it); else a response hit is noted as the normal path would (_early_hits.note_response), so the
// early hits learn the route. -1 with an error set.
int early_hits_say(hit_path* self, const armed_state& s) {
  PyObject* learn = nullptr;
  if (PyContextVar_Get(self->learning, nullptr, &learn) < 0) return -1;
  if (!learn || learn == Py_None) {
    Py_XDECREF(learn);
    return 0;
  }
  int answer = 0;
  PyObject* verdict = PyObject_GetAttrString(learn, "verdict");
  PyObject* closed = verdict ? PyObject_GetAttrString(learn, "closed") : nullptr;
  if (!closed) {
    answer = -1;
  } else if (verdict != Py_None) {
    answer = 1;
  } else if (s.kind == mode::response && s.endpoint != Py_None && closed == Py_False) {
    PyObject* key = PyBytes_FromStringAndSize(s.key.data(), static_cast<Py_ssize_t>(s.key.size()));
    if (!key || PyObject_SetAttrString(learn, "endpoint", s.endpoint) < 0 ||
        PyObject_SetAttrString(learn, "key", key) < 0 || PyObject_SetAttrString(learn, "namespace", s.ns) < 0)
      answer = -1;
    Py_XDECREF(key);
  }
  Py_XDECREF(verdict);
  Py_XDECREF(closed);
  Py_DECREF(learn);
  return answer;
}

// Whether the request in kwargs must take the normal path: a conditional request (a 304 may
// answer it), one asking to revalidate when that is honoured, or one the early hits have a
// verdict for. -1 with an error set.
int request_needs_normal_path(hit_path* self, const armed_state& s, PyObject* kwargs) {
  if (self->learning != Py_None) {
    const int early = early_hits_say(self, s);
    if (early) return early;
  }
  if (!s.request_param || !PyDict_Check(kwargs)) return 0;
  PyObject* request = PyDict_GetItemWithError(kwargs, s.request_param);  // borrowed
  if (!request) return PyErr_Occurred() ? -1 : 0;
  if (request == Py_None) return 0;
  PyObject* scope = PyObject_GetAttrString(request, "scope");
  if (!scope) return -1;
  const int answer = scope_needs_normal_path(s, scope);
  Py_DECREF(scope);
  return answer;
}

// The same for an ASGI scope's request headers.
int scope_needs_normal_path(const armed_state& s, PyObject* scope) {
  PyObject* headers = PyDict_Check(scope) ? PyDict_GetItemString(scope, "headers") : nullptr;  // borrowed
  int answer = 0;
  if (headers && (PyList_Check(headers) || PyTuple_Check(headers))) {
    PyObject* seq = PySequence_Fast(headers, "headers");
    const Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(seq) : 0;
    for (Py_ssize_t i = 0; seq && i < n && !answer; ++i) {
      PyObject* pair = PySequence_Fast_GET_ITEM(seq, i);
      if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) < 1 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0))) {
        answer = 1;  // not what a server sends: the normal path judges it
        break;
      }
      const char* name = PyBytes_AS_STRING(PyTuple_GET_ITEM(pair, 0));
      if (std::strcmp(name, "if-none-match") == 0 || std::strcmp(name, "if-modified-since") == 0) answer = 1;
      if (s.honor_no_cache && (std::strcmp(name, "cache-control") == 0 || std::strcmp(name, "pragma") == 0))
        answer = 1;
    }
    Py_XDECREF(seq);
    if (!seq) answer = -1;
  }
  return answer;
}

// A new response: the template's type and attributes, its headers then the hit's, then what the
// request's dependencies set on the injected response (headers, and its status if set).
PyObject* copy_response(const armed_state& s, PyObject* injected) {
  PyObject* fields = PyDict_Copy(s.fields);
  if (!fields) return nullptr;
  PyObject* headers = PyList_GetSlice(s.headers, 0, PyList_GET_SIZE(s.headers));
  PyObject* out = nullptr;
  if (headers && injected && injected != Py_None) {
    PyObject* more = PyObject_GetAttrString(injected, "raw_headers");
    PyObject* status = more ? PyObject_GetAttrString(injected, "status_code") : nullptr;
    int ok = more && status && PyList_SetSlice(headers, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, more) == 0;
    if (ok && status != Py_None) {
      const int truthy = PyObject_IsTrue(status);
      ok = truthy >= 0 && (!truthy || PyDict_SetItemString(fields, "status_code", status) == 0);
    }
    Py_XDECREF(more);
    Py_XDECREF(status);
    if (!ok) Py_CLEAR(headers);
  }
  if (headers && PyDict_SetItemString(fields, "raw_headers", headers) == 0) {
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(s.decoded);
    out = type->tp_alloc(type, 0);
    if (out && PyObject_GenericSetDict(out, fields, nullptr) < 0) Py_CLEAR(out);
  }
  Py_XDECREF(headers);
  Py_DECREF(fields);
  return out;
}

PyObject* hit(PyObject* obj, PyObject* kwargs) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  armed_state& s = *self->state;
  if (s.kind == mode::off) return miss_of(self);
  if (s.epoch != epoch) {
    clear_state(s);
    return miss_of(self);
  }
  const int normal = request_needs_normal_path(self, s, kwargs);
  if (normal < 0) return nullptr;
  if (normal) return miss_of(self);
  if (s.kind == mode::response && wall_seconds() >= s.until) return miss_of(self);  // its headers are old
  if (!unchanged(s)) return miss_of(self);  // another value, none, or not answerable here
  // Held while copying: the copy allocates, which may run the collector and so other threads,
  // one of which may arm this path again and release what it held.
  PyObject* source = s.kind == mode::value ? s.decoded : nullptr;
  if (source && s.response_param && PyDict_Check(kwargs)) {  // FastAPI's response gets cache headers: normal path
    PyObject* injected = PyDict_GetItemWithError(kwargs, s.response_param);
    if (!injected && PyErr_Occurred()) return nullptr;
    if (injected && injected != Py_None) return miss_of(self);
  }
  if (source) return [&] {
    Py_INCREF(source);
    PyObject* copy = copy_json_value(source);
    Py_DECREF(source);
    return copy;
  }();
  armed_state held = s;  // references to the same objects, taken before any allocation
  Py_INCREF(held.decoded);
  Py_INCREF(held.fields);
  Py_INCREF(held.headers);
  PyObject* injected = nullptr;
  if (held.response_param && PyDict_Check(kwargs)) {
    injected = PyDict_GetItemWithError(kwargs, held.response_param);
    if (!injected && PyErr_Occurred()) return nullptr;
  }
  Py_XINCREF(injected);
  PyObject* out = copy_response(held, injected);
  Py_XDECREF(injected);
  Py_DECREF(held.decoded);
  Py_DECREF(held.fields);
  Py_DECREF(held.headers);
  held.decoded = held.fields = held.headers = nullptr;
  // borrowed in the copy: not released here
  return out;
}

// parts(scope): (status, body, headers) of the armed response for an early hit of HTTPCache.attach()
// (a new header list each time: middleware may change what it is sent), or MISS: the same checks
// as hit(), for the ASGI scope's request.
PyObject* parts(PyObject* obj, PyObject* scope) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  armed_state& s = *self->state;
  if (s.kind != mode::response) return miss_of(self);
  if (s.epoch != epoch) {
    clear_state(s);
    return miss_of(self);
  }
  const int normal = scope_needs_normal_path(s, scope);
  if (normal < 0) return nullptr;
  if (normal || wall_seconds() >= s.until) return miss_of(self);
  if (!unchanged(s)) return miss_of(self);  // another value, none, or not answerable here
  PyObject* status = PyDict_GetItemString(s.fields, "status_code");  // borrowed
  PyObject* body = PyDict_GetItemString(s.fields, "body");
  if (!status || !body) return miss_of(self);
  PyObject* template_headers = s.headers;
  Py_INCREF(status);
  Py_INCREF(body);
  Py_INCREF(template_headers);  // held: the copy allocates, which may run other threads
  PyObject* headers = PyList_GetSlice(template_headers, 0, PyList_GET_SIZE(template_headers));
  PyObject* out = headers ? PyTuple_Pack(3, status, body, headers) : nullptr;
  Py_DECREF(template_headers);
  Py_XDECREF(headers);
  Py_DECREF(status);
  Py_DECREF(body);
  return out;
}

// arm_value(cache, key, version, decoded, response_param): hits of `version` return
// copy_json(decoded), unless FastAPI injected a response (which the normal path gives headers).
// arm_response(cache, key, version, type, fields, headers, until, request_param, response_param,
// honor_no_cache, endpoint, namespace): hits return a new `type` object with `fields` and a copy of `headers` (until
// wall time `until`), plus the injected response's headers and status.
PyObject* arm(hit_path* self, PyObject* args, mode kind) {
  PyObject *cache = nullptr, *key_obj = nullptr, *decoded = nullptr, *fields = nullptr, *headers = nullptr;
  PyObject *request_param = Py_None, *response_param = Py_None, *endpoint = Py_None, *ns = Py_None;
  unsigned long long version = 0;
  double until = 0;
  int honor = 0;
  if (kind == mode::value) {
    if (!PyArg_ParseTuple(args, "OO!KOO:arm_value", &cache, &PyBytes_Type, &key_obj, &version, &decoded,
                          &response_param))
      return nullptr;
  } else if (!PyArg_ParseTuple(args, "OO!KO!O!O!dOOpOO:arm_response", &cache, &PyBytes_Type, &key_obj, &version,
                               &PyType_Type, &decoded, &PyDict_Type, &fields, &PyList_Type, &headers, &until,
                               &request_param, &response_param, &honor, &endpoint, &ns)) {
    return nullptr;
  }
  const char* key = PyBytes_AS_STRING(key_obj);
  const Py_ssize_t key_len = PyBytes_GET_SIZE(key_obj);
  cache_ptr handle;
  try {
    handle = py::cast<const cache_object&>(py::handle(cache)).shared();
  } catch (py::error_already_set& e) {
    e.restore();
    return nullptr;
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_TypeError, e.what());
    return nullptr;
  }
  if (version == 0) {
    PyErr_SetString(PyExc_ValueError, "HitPath: version 0 names no value");
    return nullptr;
  }
  armed_state& s = *self->state;
  armed_state old = s;  // released after the new state is in place (a release may run Python code)
  s.cache = std::move(handle);
  s.key.assign(key, static_cast<std::size_t>(key_len));
  s.version = version;
  s.epoch = epoch;
  s.kind = kind;
  s.until = until;
  s.honor_no_cache = honor != 0;
  Py_INCREF(decoded);
  s.decoded = decoded;
  Py_XINCREF(fields);
  s.fields = fields;
  Py_XINCREF(headers);
  s.headers = headers;
  s.request_param = request_param == Py_None ? nullptr : (Py_INCREF(request_param), request_param);
  s.response_param = response_param == Py_None ? nullptr : (Py_INCREF(response_param), response_param);
  Py_INCREF(endpoint);
  s.endpoint = endpoint;
  Py_INCREF(ns);
  s.ns = ns;
  clear_state(old);
  Py_RETURN_NONE;
}

PyObject* arm_value(PyObject* self, PyObject* args) { return arm(reinterpret_cast<hit_path*>(self), args, mode::value); }
PyObject* arm_response(PyObject* self, PyObject* args) {
  return arm(reinterpret_cast<hit_path*>(self), args, mode::response);
}

PyObject* disarm(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  armed_state old = *self->state;
  self->state->kind = mode::off;
  self->state->decoded = self->state->fields = self->state->headers = nullptr;
  self->state->request_param = self->state->response_param = nullptr;
  self->state->endpoint = self->state->ns = nullptr;
  self->state->cache.reset();
  clear_state(old);
  Py_RETURN_NONE;
}

PyObject* armed(PyObject* obj, void*) {
  const armed_state& s = *reinterpret_cast<hit_path*>(obj)->state;
  return PyBool_FromLong(s.kind != mode::off && s.epoch == epoch);
}

PyObject* disarm_all(PyObject*, PyObject*) {
  ++epoch;
  Py_RETURN_NONE;
}

PyObject* make(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* names[] = {"miss", "learning", nullptr};
  PyObject *miss = nullptr, *learning = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:HitPath", const_cast<char**>(names), &miss, &learning))
    return nullptr;
  if (learning != Py_None && !PyContextVar_CheckExact(learning)) {
    PyErr_SetString(PyExc_TypeError, "HitPath: learning must be a ContextVar or None");
    return nullptr;
  }
  auto* self = reinterpret_cast<hit_path*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  self->state = new (std::nothrow) armed_state();
  if (!self->state) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  Py_INCREF(miss);
  self->miss = miss;
  Py_INCREF(learning);
  self->learning = learning;
  return reinterpret_cast<PyObject*>(self);
}

int traverse(PyObject* obj, visitproc visit, void* arg) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  Py_VISIT(Py_TYPE(obj));
  Py_VISIT(self->miss);
  Py_VISIT(self->learning);
  if (self->state) {
    Py_VISIT(self->state->decoded);
    Py_VISIT(self->state->fields);
    Py_VISIT(self->state->headers);
  }
  return 0;
}

int clear(PyObject* obj) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  Py_CLEAR(self->miss);
  Py_CLEAR(self->learning);
  if (self->state) clear_state(*self->state);
  return 0;
}

void dealloc(PyObject* obj) {
  PyTypeObject* type = Py_TYPE(obj);
  PyObject_GC_UnTrack(obj);
  clear(obj);
  delete reinterpret_cast<hit_path*>(obj)->state;
  type->tp_free(obj);
  Py_DECREF(type);
}

PyMethodDef methods[] = {
    {"hit", hit, METH_O,
     "hit(kwargs): a copy of the armed value (or response, with the injected one's headers), when the "
     "entry held is still its version; else MISS."},
    {"parts", parts, METH_O,
     "parts(scope): (status, body, headers) of the armed response for an ASGI request, or MISS."},
    {"arm_value", arm_value, METH_VARARGS, "arm_value(cache, key, version, decoded, response_param)"},
    {"arm_response", arm_response, METH_VARARGS,
     "arm_response(cache, key, version, type, fields, headers, until, request_param, response_param, "
     "honor_no_cache, endpoint, namespace)"},
    {"disarm", disarm, METH_NOARGS, "Forgets what it was armed with."},
    {"disarm_all", disarm_all, METH_NOARGS | METH_STATIC,
     "Every HitPath answers MISS until armed again (HTTPCache's settings changed)."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef getset[] = {{"armed", armed, nullptr, "Whether a hit may be answered here now.", nullptr},
                        {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot slots[] = {{Py_tp_new, reinterpret_cast<void*>(make)},
                       {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
                       {Py_tp_traverse, reinterpret_cast<void*>(traverse)},
                       {Py_tp_clear, reinterpret_cast<void*>(clear)},
                       {Py_tp_methods, methods},
                       {Py_tp_getset, getset},
                       {Py_tp_doc, const_cast<char*>("The one-call hit of a fixed-key @cache function.")},
                       {0, nullptr}};

PyType_Spec spec = {"httpcache._httpcache.HitPath", sizeof(hit_path), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
                    slots};

}  // namespace

void hit_paths_disarm_all() { ++epoch; }

void init_hit_path(py::module_& m) {
  PyObject* type = PyType_FromSpec(&spec);
  if (!type) throw py::error_already_set();
  m.add_object("HitPath", py::reinterpret_steal<py::object>(type));
}

}  // namespace httpcache_py
