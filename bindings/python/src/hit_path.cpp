// SPDX-License-Identifier: MIT
// httpcache._httpcache.HitPath: the hit of a @cache function answered in one C call, when this
// process holds the entry (the near tier, memory://) and it is the value the function last
// decoded. The Python wrapper asks it first (a fixed key: hit(kwargs); a key built per call:
// hit_key(key, kwargs)); anything it cannot answer alone (another value, no entry, a conditional
// request, caching turned off or re-initialised) comes back as the package's MISS and the normal
// path runs, which arms it again for the value it then serves.
//
// Why it is safe to hand out what it holds: it is armed with a value's version
// (httpcache_cache_peek_version), and every hit asks the store whether that version is still the
// one held; a new value, even with the same bytes, has a new version. Each caller gets its own
// object: a copy_json copy of a plain value, or a new response object with its own header list.
//
// Why C: a near hit's cost is a few attribute reads and calls; written in Python they cost more
// than the lookup and the copy (docs/design.md "Near tier"). Plain METH_O/METH_FASTCALL methods,
// no pybind11 dispatch. Every method runs with the GIL held; none blocks (peek does no I/O).
//
// What a key is armed with is immutable (an `armed`, shared): a call holds its own reference to
// it, so another thread arming the key again (the copies allocate, which may run other threads)
// never changes what the call is copying. disarm_all() also releases what every path holds, so a
// handle HTTPCache dropped (init(), close()) is not kept open by a path armed on it; a hit then
// costs no atomic operation for the handle.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache_object.hpp"

namespace httpcache_py {

namespace {

// Bumped by disarm_all() (HTTPCache's settings changed): what was armed under another epoch
// answers MISS until the normal path arms it again.
std::atomic<std::uint64_t> epoch{1};

enum class mode { value, response };

// One key's armed value or response. Holds a reference to each object; released with the GIL
// held (every owner lives in a Python object or a call).
struct armed {
  cache_ptr cache;  // released by disarm_all(): see the file's comment
  std::string key;
  std::uint64_t version = 0;
  std::uint64_t epoch = 0;
  mode kind = mode::value;
  PyObject* decoded = nullptr;   // value: the decoded value (never handed out); response: its type
  PyObject* fields = nullptr;    // response: the template's attributes but raw_headers (a dict)
  PyObject* headers = nullptr;   // response: the template's raw headers then the hit's (a list)
  std::chrono::steady_clock::time_point until;  // response: when the hit's headers stop being current
  PyObject* request_param = nullptr;   // names of FastAPI's injected Request and Response, or null
  PyObject* response_param = nullptr;
  PyObject* endpoint = nullptr;  // response: what the early hits learn a served key under (note_response)
  PyObject* ns = nullptr;
  bool honor_no_cache = false;   // a request's Cache-Control/Pragma may ask to revalidate

  armed() = default;
  armed(const armed&) = delete;
  armed& operator=(const armed&) = delete;
  ~armed() {
    Py_XDECREF(decoded);
    Py_XDECREF(fields);
    Py_XDECREF(headers);
    Py_XDECREF(request_param);
    Py_XDECREF(response_param);
    Py_XDECREF(endpoint);
    Py_XDECREF(ns);
  }
};
using armed_ptr = std::shared_ptr<const armed>;

struct armed_table {
  struct keyed {
    armed_ptr armed;
    std::list<std::string>::iterator at;  // in `order`
  };
  armed_ptr one;                                   // hit(): the fixed key's
  std::unordered_map<std::string, keyed> by_key;  // hit_key(): the last max_keys keys armed
  std::list<std::string> order;                    // their keys, the least recently armed first
  std::size_t max_keys = 1;
};

struct hit_path {
  PyObject_HEAD
  PyObject* miss;      // the package's MISS
  PyObject* learning;  // the early hits' ContextVar: a request it has a verdict for goes the normal way
  armed_table* table;
};

PyObject* miss_of(hit_path* self) {
  Py_INCREF(self->miss);
  return self->miss;
}

// Whether the store still holds the armed version (a hit, counted); anything else is not counted:
// the normal path that follows reads and counts it.
bool unchanged(const armed& s) {
  std::uint64_t version = 0;
  return httpcache_cache_peek_version(nullptr, nullptr, &version, s.cache.get(), s.key.data(), s.key.size(),
                                      s.version) == HTTPCACHE_OK &&
         version == s.version;
}

// Whether an ASGI scope's request headers ask for the normal path: a precondition (a 304 may
// answer it), or Cache-Control/Pragma when revalidation is honoured. -1 with an error set.
int scope_needs_normal_path(const armed& s, PyObject* scope) {
  PyObject* headers = PyDict_Check(scope) ? PyDict_GetItemString(scope, "headers") : nullptr;  // borrowed
  if (!headers || !(PyList_Check(headers) || PyTuple_Check(headers))) return 0;
  PyObject* seq = PySequence_Fast(headers, "headers");
  if (!seq) return -1;
  int answer = 0;
  for (Py_ssize_t i = 0, n = PySequence_Fast_GET_SIZE(seq); i < n && !answer; ++i) {
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
  Py_DECREF(seq);
  return answer;
}

// The request's Learning when HTTPCache.attach() saw it (a new reference), else null; -1 with an
// error set.
int learning_of(hit_path* self, PyObject** learn) {
  *learn = nullptr;
  if (self->learning == Py_None) return 0;
  if (PyContextVar_Get(self->learning, nullptr, learn) < 0) return -1;
  if (*learn == Py_None) Py_CLEAR(*learn);
  return 0;
}

// 1 when the early hits' GET left a verdict for this request (the normal path takes it). -1 with an
// error set.
int early_verdict_left(hit_path* self) {
  PyObject* learn = nullptr;
  if (learning_of(self, &learn) < 0) return -1;
  if (!learn) return 0;
  PyObject* verdict = PyObject_GetAttrString(learn, "verdict");
  Py_DECREF(learn);
  if (!verdict) return -1;
  const int left = verdict != Py_None;
  Py_DECREF(verdict);
  return left;
}

// A response hit about to be answered is noted as the normal path would
// (_early_hits.note_response), so that the early hits learn the route. -1 with an error set.
int note_for_early_hits(hit_path* self, const armed& s) {
  if (s.kind != mode::response || s.endpoint == Py_None) return 0;
  PyObject* learn = nullptr;
  if (learning_of(self, &learn) < 0) return -1;
  if (!learn) return 0;
  int rc = 0;
  PyObject* closed = PyObject_GetAttrString(learn, "closed");
  if (!closed) {
    rc = -1;
  } else if (closed == Py_False) {
    PyObject* key = PyBytes_FromStringAndSize(s.key.data(), static_cast<Py_ssize_t>(s.key.size()));
    if (!key || PyObject_SetAttrString(learn, "endpoint", s.endpoint) < 0 ||
        PyObject_SetAttrString(learn, "key", key) < 0 || PyObject_SetAttrString(learn, "namespace", s.ns) < 0)
      rc = -1;
    Py_XDECREF(key);
  }
  Py_XDECREF(closed);
  Py_DECREF(learn);
  return rc;
}

// Whether this call must take the normal path (see scope_needs_normal_path, early_hits_say), or
// a plain value's call has FastAPI's injected response (which the normal path gives headers).
int call_needs_normal_path(hit_path* self, const armed& s, PyObject* kwargs) {
  if (const int early = early_verdict_left(self)) return early;
  if (!PyDict_Check(kwargs)) return 0;
  if (s.kind == mode::value && s.response_param) {
    PyObject* injected = PyDict_GetItemWithError(kwargs, s.response_param);  // borrowed
    if (!injected && PyErr_Occurred()) return -1;
    if (injected && injected != Py_None) return 1;
  }
  if (!s.request_param) return 0;
  PyObject* request = PyDict_GetItemWithError(kwargs, s.request_param);  // borrowed
  if (!request) return PyErr_Occurred() ? -1 : 0;
  if (request == Py_None) return 0;
  PyObject* scope = PyObject_GetAttrString(request, "scope");
  if (!scope) return -1;
  const int answer = scope_needs_normal_path(s, scope);
  Py_DECREF(scope);
  return answer;
}

// A new response: the template's type and attributes, its headers then the hit's, then what the
// request's dependencies set on the injected response (headers, and its status if set).
PyObject* copy_response(const armed& s, PyObject* injected) {
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
    // Through the type's __dict__ setter, as `copy.__dict__ = fields` would: on 3.13 an object's
    // attributes may live inline, which PyObject_GenericSetDict leaves in force (they then hide
    // the dict set).
    static PyObject* dict_name = PyUnicode_InternFromString("__dict__");
    if (out && (!dict_name || PyObject_SetAttr(out, dict_name, fields) < 0)) Py_CLEAR(out);
  }
  Py_XDECREF(headers);
  Py_DECREF(fields);
  return out;
}

// The hit `held` answers for this call, or MISS.
PyObject* answer(hit_path* self, const armed_ptr& held, PyObject* kwargs) {
  if (!held) return miss_of(self);
  const armed& s = *held;
  if (s.epoch != epoch.load(std::memory_order_relaxed)) return miss_of(self);
  const int normal = call_needs_normal_path(self, s, kwargs);
  if (normal < 0) return nullptr;
  if (normal) return miss_of(self);
  if (s.kind == mode::response && std::chrono::steady_clock::now() >= s.until) return miss_of(self);  // old headers
  if (!unchanged(s)) return miss_of(self);  // another value, none, or not answerable here
  if (note_for_early_hits(self, s) < 0) return nullptr;
  if (s.kind == mode::value) return copy_json_value(s.decoded);
  PyObject* injected = nullptr;
  if (s.response_param && PyDict_Check(kwargs)) {
    injected = PyDict_GetItemWithError(kwargs, s.response_param);
    if (!injected && PyErr_Occurred()) return nullptr;
  }
  Py_XINCREF(injected);
  PyObject* out = copy_response(s, injected);
  Py_XDECREF(injected);
  return out;
}

PyObject* hit(PyObject* obj, PyObject* kwargs) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  const armed_ptr held = self->table->one;  // its own reference: see the file's comment
  return answer(self, held, kwargs);
}

// hit_key(key, kwargs): hit() for a key built per call.
PyObject* hit_key(PyObject* obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  if (nargs != 2 || !PyBytes_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, "hit_key(key: bytes, kwargs)");
    return nullptr;
  }
  armed_ptr held;
  try {
    const std::string key(PyBytes_AS_STRING(args[0]), static_cast<std::size_t>(PyBytes_GET_SIZE(args[0])));
    auto& by_key = self->table->by_key;
    auto at = by_key.find(key);
    if (at != by_key.end()) held = at->second.armed;
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  return answer(self, held, args[1]);
}

// parts(scope): (status, body, headers) of the armed response for an early hit of HTTPCache.attach()
// (a new header list each time: middleware may change what it is sent), or MISS: the same checks
// as hit(), for the ASGI scope's request.
PyObject* parts(PyObject* obj, PyObject* scope) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  const armed_ptr held = self->table->one;
  if (!held || held->kind != mode::response || held->epoch != epoch.load(std::memory_order_relaxed))
    return miss_of(self);
  const armed& s = *held;
  const int normal = scope_needs_normal_path(s, scope);
  if (normal < 0) return nullptr;
  if (normal || std::chrono::steady_clock::now() >= s.until || !unchanged(s)) return miss_of(self);
  PyObject* status = PyDict_GetItemString(s.fields, "status_code");  // borrowed
  PyObject* body = PyDict_GetItemString(s.fields, "body");
  if (!status || !body) return miss_of(self);
  PyObject* headers = PyList_GetSlice(s.headers, 0, PyList_GET_SIZE(s.headers));
  PyObject* out = headers ? PyTuple_Pack(3, status, body, headers) : nullptr;
  Py_XDECREF(headers);
  return out;
}

// Puts `made` in the table: as the one, or under its key (forgetting another key when full).
void keep(armed_table& table, armed_ptr made) {
  if (table.max_keys == 1) {
    armed_ptr old = std::move(table.one);
    table.one = std::move(made);
    return;  // `old` released here, after the new one is in place (a release may run Python code)
  }
  armed_ptr old;
  auto at = table.by_key.find(made->key);
  if (at != table.by_key.end()) {
    old = std::move(at->second.armed);
    at->second.armed = std::move(made);
    table.order.splice(table.order.end(), table.order, at->second.at);
    return;
  }
  if (table.by_key.size() >= table.max_keys && !table.order.empty()) {
    auto oldest = table.by_key.find(table.order.front());
    if (oldest != table.by_key.end()) {
      old = std::move(oldest->second.armed);
      table.by_key.erase(oldest);
    }
    table.order.pop_front();
  }
  std::string key = made->key;
  table.order.push_back(key);
  table.by_key.emplace(std::move(key), armed_table::keyed{std::move(made), std::prev(table.order.end())});
}

// arm_value(epoch, cache, key, version, decoded, request_param, response_param, honor_no_cache):
// hits of `version` return copy_json(decoded), unless FastAPI injected a response (which the
// normal path gives headers) or the request needs the normal path.
// arm_response(epoch, cache, key, version, type, fields, headers, good_for, request_param,
// response_param, honor_no_cache, endpoint, namespace): hits return a new `type` object with
// `fields` and a copy of `headers` (for `good_for` seconds, 1 at most), plus the injected
// response's headers and status. `epoch`: epoch() read before the caller read HTTPCache's
// settings; nothing is armed if they changed since.
PyObject* arm(hit_path* self, PyObject* args, mode kind) {
  PyObject *cache = nullptr, *key_obj = nullptr, *decoded = nullptr, *fields = nullptr, *headers = nullptr;
  PyObject *request_param = Py_None, *response_param = Py_None, *endpoint = Py_None, *ns = Py_None;
  unsigned long long version = 0, since = 0;
  double good_for = 0;
  int honor = 0;
  if (kind == mode::value) {
    if (!PyArg_ParseTuple(args, "KOO!KOOOp:arm_value", &since, &cache, &PyBytes_Type, &key_obj, &version, &decoded,
                          &request_param, &response_param, &honor))
      return nullptr;
  } else if (!PyArg_ParseTuple(args, "KOO!KO!O!O!dOOpOO:arm_response", &since, &cache, &PyBytes_Type, &key_obj,
                               &version, &PyType_Type, &decoded, &PyDict_Type, &fields, &PyList_Type, &headers,
                               &good_for, &request_param, &response_param, &honor, &endpoint, &ns)) {
    return nullptr;
  }
  if (version == 0) {
    PyErr_SetString(PyExc_ValueError, "HitPath: version 0 names no value");
    return nullptr;
  }
  // Settings changed since the caller read them (another thread ran init(), close() or turned
  // caching off): what it served may be the old settings' answer, so nothing is armed.
  if (since != epoch.load(std::memory_order_relaxed)) Py_RETURN_NONE;
  const cache_object* owner = nullptr;
  try {
    owner = &py::cast<const cache_object&>(py::handle(cache));
  } catch (const std::exception&) {
    PyErr_SetString(PyExc_TypeError, "HitPath: cache must be an httpcache._httpcache.Cache");
    return nullptr;
  }
  if (!owner->is_open()) Py_RETURN_NONE;  // closed meanwhile: nothing to arm, and the hit stands
  std::shared_ptr<armed> made;
  try {
    made = std::make_shared<armed>();
    made->cache = owner->shared();
    made->key.assign(PyBytes_AS_STRING(key_obj), static_cast<std::size_t>(PyBytes_GET_SIZE(key_obj)));
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  made->version = version;
  made->epoch = since;
  made->kind = kind;
  made->until = std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    std::chrono::duration<double>(std::min(std::max(good_for, 0.0), 1.0)));
  made->honor_no_cache = honor != 0;
  auto own = [](PyObject* o) { return o == Py_None || !o ? nullptr : (Py_INCREF(o), o); };
  made->decoded = (Py_INCREF(decoded), decoded);
  made->fields = own(fields);
  made->headers = own(headers);
  made->request_param = own(request_param);
  made->response_param = own(response_param);
  made->endpoint = (Py_INCREF(endpoint), endpoint);
  made->ns = (Py_INCREF(ns), ns);
  try {
    keep(*self->table, std::move(made));
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  Py_RETURN_NONE;
}

PyObject* arm_value(PyObject* self, PyObject* args) { return arm(reinterpret_cast<hit_path*>(self), args, mode::value); }
PyObject* arm_response(PyObject* self, PyObject* args) {
  return arm(reinterpret_cast<hit_path*>(self), args, mode::response);
}

void forget_all(armed_table& table) {
  armed_ptr one = std::move(table.one);
  std::unordered_map<std::string, armed_table::keyed> by_key;
  by_key.swap(table.by_key);
  table.order.clear();
}  // released here, with the table already empty

PyObject* disarm(PyObject* obj, PyObject*) {
  forget_all(*reinterpret_cast<hit_path*>(obj)->table);
  Py_RETURN_NONE;
}

PyObject* armed_keys(PyObject* obj, void*) {
  const armed_table& t = *reinterpret_cast<hit_path*>(obj)->table;
  const std::uint64_t now = epoch.load(std::memory_order_relaxed);
  long n = t.one && t.one->epoch == now ? 1 : 0;
  for (const auto& [key, k] : t.by_key) n += k.armed->epoch == now ? 1 : 0;
  return PyLong_FromLong(n);
}

PyObject* epoch_now(PyObject*, PyObject*) { return PyLong_FromUnsignedLongLong(epoch.load(std::memory_order_relaxed)); }

// Every live HitPath (added when made, removed when freed; the GIL guards it), so that
// disarm_all() can release what they hold.
std::vector<hit_path*>& every_path() {
  static auto* paths = new std::vector<hit_path*>();  // never destroyed: paths may outlive statics
  return *paths;
}

PyObject* disarm_all(PyObject*, PyObject*) {
  ++epoch;
  // Moved out first, released after: a release may run Python code, which may make or free paths.
  std::vector<armed_ptr> released;
  for (hit_path* p : every_path()) {
    armed_table& t = *p->table;
    if (t.one) released.push_back(std::move(t.one));
    for (auto& [key, k] : t.by_key) released.push_back(std::move(k.armed));
    t.by_key.clear();
    t.order.clear();
  }
  released.clear();
  Py_RETURN_NONE;
}

PyObject* make(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* names[] = {"miss", "learning", "max_keys", nullptr};
  PyObject *miss = nullptr, *learning = Py_None;
  Py_ssize_t max_keys = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|On:HitPath", const_cast<char**>(names), &miss, &learning,
                                   &max_keys))
    return nullptr;
  if (learning != Py_None && !PyContextVar_CheckExact(learning)) {
    PyErr_SetString(PyExc_TypeError, "HitPath: learning must be a ContextVar or None");
    return nullptr;
  }
  if (max_keys < 1 || max_keys > 4096) {
    PyErr_SetString(PyExc_ValueError, "HitPath: max_keys must be 1..4096");
    return nullptr;
  }
  auto* self = reinterpret_cast<hit_path*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  self->table = new (std::nothrow) armed_table();
  if (!self->table) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  self->table->max_keys = static_cast<std::size_t>(max_keys);
  try {
    every_path().push_back(self);
  } catch (const std::bad_alloc&) {
    delete self->table;
    self->table = nullptr;
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  Py_INCREF(miss);
  self->miss = miss;
  Py_INCREF(learning);
  self->learning = learning;
  return reinterpret_cast<PyObject*>(self);
}

int traverse_armed(const armed_ptr& a, visitproc visit, void* arg) {
  // Only the references this path owns alone: a state another call holds is visited by no one,
  // which keeps the collector from freeing what that call still uses.
  if (!a || a.use_count() != 1) return 0;
  Py_VISIT(a->decoded);
  Py_VISIT(a->fields);
  Py_VISIT(a->headers);
  Py_VISIT(a->endpoint);
  return 0;
}

int traverse(PyObject* obj, visitproc visit, void* arg) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  Py_VISIT(Py_TYPE(obj));
  Py_VISIT(self->miss);
  Py_VISIT(self->learning);
  if (self->table) {
    if (const int rc = traverse_armed(self->table->one, visit, arg)) return rc;
    for (const auto& [key, k] : self->table->by_key)
      if (const int rc = traverse_armed(k.armed, visit, arg)) return rc;
  }
  return 0;
}

int clear(PyObject* obj) {
  auto* self = reinterpret_cast<hit_path*>(obj);
  Py_INCREF(Py_None);  // never null: a call after a collection's clear answers None, not a crash
  Py_SETREF(self->miss, Py_None);
  Py_INCREF(Py_None);
  Py_SETREF(self->learning, Py_None);
  if (self->table) forget_all(*self->table);
  return 0;
}

void dealloc(PyObject* obj) {
  PyTypeObject* type = Py_TYPE(obj);
  PyObject_GC_UnTrack(obj);
  auto& paths = every_path();
  paths.erase(std::remove(paths.begin(), paths.end(), reinterpret_cast<hit_path*>(obj)), paths.end());
  clear(obj);
  Py_CLEAR(reinterpret_cast<hit_path*>(obj)->miss);
  Py_CLEAR(reinterpret_cast<hit_path*>(obj)->learning);
  delete reinterpret_cast<hit_path*>(obj)->table;
  type->tp_free(obj);
  Py_DECREF(type);
}

PyMethodDef methods[] = {
    {"hit", hit, METH_O,
     "hit(kwargs): a copy of the armed value (or response, with the injected one's headers), when the "
     "entry held is still its version; else MISS."},
    {"hit_key", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(hit_key)), METH_FASTCALL,
     "hit_key(key, kwargs): hit() for a key built per call (a HitPath made with max_keys > 1)."},
    {"parts", parts, METH_O,
     "parts(scope): (status, body, headers) of the armed response for an ASGI request, or MISS."},
    {"arm_value", arm_value, METH_VARARGS,
     "arm_value(epoch, cache, key, version, decoded, request_param, response_param, honor_no_cache)"},
    {"arm_response", arm_response, METH_VARARGS,
     "arm_response(epoch, cache, key, version, type, fields, headers, good_for, request_param, response_param, "
     "honor_no_cache, endpoint, namespace)"},
    {"epoch", epoch_now, METH_NOARGS | METH_STATIC,
     "The settings' epoch now: read it before HTTPCache's settings, hand it to arm_*."},
    {"disarm", disarm, METH_NOARGS, "Forgets what it was armed with."},
    {"disarm_all", disarm_all, METH_NOARGS | METH_STATIC,
     "Every HitPath answers MISS until armed again (HTTPCache's settings changed)."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef getset[] = {{"armed", armed_keys, nullptr, "How many keys may be answered here now.", nullptr},
                        {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot slots[] = {{Py_tp_new, reinterpret_cast<void*>(make)},
                       {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
                       {Py_tp_traverse, reinterpret_cast<void*>(traverse)},
                       {Py_tp_clear, reinterpret_cast<void*>(clear)},
                       {Py_tp_methods, methods},
                       {Py_tp_getset, getset},
                       {Py_tp_doc, const_cast<char*>("The one-call hit of a @cache function.")},
                       {0, nullptr}};

PyType_Spec spec = {"httpcache._httpcache.HitPath", sizeof(hit_path), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
                    slots};

}  // namespace

void init_hit_path(py::module_& m) {
  PyObject* type = PyType_FromSpec(&spec);
  if (!type) throw py::error_already_set();
  m.add_object("HitPath", py::reinterpret_steal<py::object>(type));
}

}  // namespace httpcache_py
