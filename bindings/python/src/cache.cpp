// SPDX-License-Identifier: MIT
// httpcache._httpcache.Cache: a cache handle and the blocking calls. Every call that may wait on
// the backend releases the GIL; arguments are converted to C++ values before, results to Python
// objects after, and Python code (compute and TTL callbacks) re-acquires it.
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../../../core/options.hpp"  // the option table: header-only, no core code is linked
#include "cache_object.hpp"

namespace httpcache_py {

namespace {

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Payload of the compute trampoline: the Python callable and the exception it raised, if any,
// which is re-raised unchanged once the blocking call has returned and the GIL is held again.
struct compute_state {
  py::handle fn;
  std::optional<py::error_already_set> error;
  const void* handle = nullptr;  // with key: where a failure is kept for the flight's waiters
  const std::string* key = nullptr;
};

// Failed computations, kept for the callers that waited for them: the core hands the waiters of
// a failed flight the leader's failure (HTTPCACHE_EUSER), and they raise the leader's exception
// object itself (Go's singleflight semantics). Keyed by handle and key; a waiter takes the entry
// recorded after its own call began (it wakes right after the failure), and entries older than
// a few seconds are dropped. Only touched with the GIL held; never destroyed (module lifetime).
using clock_type = std::chrono::steady_clock;
struct kept_failure {
  py::object error;
  clock_type::time_point at;
};
std::map<std::pair<const void*, std::string>, kept_failure>& kept_failures() {
  static auto* kept = new std::map<std::pair<const void*, std::string>, kept_failure>();
  return *kept;
}

void keep_failure(const compute_state& state) {
  if (!state.key || !state.error) return;
  auto& kept = kept_failures();
  const auto now = clock_type::now();
  for (auto it = kept.begin(); it != kept.end();)
    it = now - it->second.at > std::chrono::seconds(10) ? kept.erase(it) : std::next(it);
  kept[{state.handle, *state.key}] = kept_failure{state.error->value(), now};
}

// The exception of the flight a waiter shared, if one failed after `since`.
py::object kept_failure_for(const void* handle, const std::string& key, clock_type::time_point since) {
  auto& kept = kept_failures();
  auto it = kept.find({handle, key});
  if (it == kept.end() || it->second.at < since) return py::object();
  return it->second.error;
}

// httpcache_compute_cb over a Python callable returning bytes or (bytes, store: bool).
int compute_trampoline(httpcache_buf* value, uint32_t* flags, void* payload) {
  auto* state = static_cast<compute_state*>(payload);
  py::gil_scoped_acquire gil;
  try {
    py::object result = state->fn();
    py::object data = result;
    if (PyTuple_Check(result.ptr())) {
      py::tuple t = py::reinterpret_borrow<py::tuple>(result);
      if (t.size() != 2 && t.size() != 3) throw py::type_error("compute must return bytes, (bytes, store) or (bytes, store, stale)");
      data = t[0];
      if (!PyObject_IsTrue(t[1].ptr())) *flags |= HTTPCACHE_COMPUTE_DONT_STORE;
      if (t.size() == 3 && !t[2].is_none()) {  // this value's own windows, (swr_ms, sie_ms)
        auto w = t[2].cast<std::pair<int64_t, int64_t>>();
        if (httpcache_compute_stale(w.first, w.second) != HTTPCACHE_OK) throw py::value_error(httpcache_error_last()->message);
      }
    }
    if (!PyBytes_Check(data.ptr())) throw py::type_error("compute must return bytes or (bytes, store)");
    char* ptr = nullptr;
    Py_ssize_t size = 0;
    PyBytes_AsStringAndSize(data.ptr(), &ptr, &size);
    int rc = httpcache_buf_set(value, ptr, static_cast<size_t>(size));
    if (rc != HTTPCACHE_OK) {
      PyErr_NoMemory();
      throw py::error_already_set();
    }
    return 0;
  } catch (py::error_already_set& e) {
    state->error.emplace(std::move(e));
  } catch (py::builtin_exception& e) {
    e.set_error();
    state->error.emplace();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    state->error.emplace();
  }
  keep_failure(*state);
  return HTTPCACHE_EUSER;
}

// ---- Options: the core's table (core/options.hpp), as keywords of Cache() ----

namespace core = httpcache;

using option_setter = void (*)(httpcache_options&, std::uint64_t);
#define HTTPCACHE_PY_OPTION_SETTER(name, type) \
  [](httpcache_options& o, std::uint64_t v) { o.name = static_cast<type>(v); },
// Indexed like core::option_table (both expand HTTPCACHE_OPTION_LIST).
constexpr option_setter option_setters[] = {HTTPCACHE_OPTION_LIST(HTTPCACHE_PY_OPTION_SETTER)};
#undef HTTPCACHE_PY_OPTION_SETTER
static_assert(std::size(option_setters) == core::option_count);

// _httpcache.OPTIONS: ((name, default, maximum), ...) in the order of httpcache_options.
py::tuple options_tuple() {
  py::tuple t(core::option_count);
  for (std::size_t i = 0; i < core::option_count; ++i) {
    const core::option_info& o = core::option_table[i];
    t[i] = py::make_tuple(py::str(o.name.data(), o.name.size()), py::int_(o.default_value), py::int_(o.maximum));
  }
  return t;
}

std::size_t option_index(const std::string& name) {
  if (const core::option_info* o = core::find_option(name)) return static_cast<std::size_t>(o - core::option_table);
  std::string known;
  for (const core::option_info& o : core::option_table) known += (known.empty() ? "" : ", ") + std::string(o.name);
  known += ", ssl_ca_certs, ssl_ca_path, ssl_certfile, ssl_keyfile, ssl_server_hostname, ssl_cert_reqs, ssl_check_hostname";
  throw py::type_error("Cache() got an unknown option '" + name + "'; known: " + known);
}

// An int in 0..maximum (not a bool: True is not an option value).
std::uint64_t option_value(const core::option_info& o, py::handle value) {
  PyObject* p = value.ptr();
  if (PyLong_Check(p) && !PyBool_Check(p)) {
    unsigned long long v = PyLong_AsUnsignedLongLong(p);  // OverflowError for < 0 or > 2**64-1
    if (!PyErr_Occurred() && v <= o.maximum) return v;
    PyErr_Clear();
  }
  throw py::value_error("invalid " + std::string(o.name) + "=" + std::string(py::repr(value)) +
                        ": must be an int in 0.." + std::to_string(o.maximum));
}

// The TLS keywords (redis-py's names): five strings (None: not set), ssl_cert_reqs
// "required"|"none" and ssl_check_hostname as a bool. `strings` keeps the text the struct points at.
constexpr const char* tls_string_options[] = {"ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile",
                                              "ssl_server_hostname"};

bool set_tls_option(httpcache_options& o, const std::string& name, py::handle value, std::vector<std::string>& strings) {
  const char** fields[] = {&o.ssl_ca_certs, &o.ssl_ca_path, &o.ssl_certfile, &o.ssl_keyfile, &o.ssl_server_hostname};
  for (std::size_t i = 0; i < std::size(tls_string_options); ++i) {
    if (name != tls_string_options[i]) continue;
    if (value.is_none()) return true;
    const bool is_name = name == "ssl_server_hostname";
    if (is_name ? !py::isinstance<py::str>(value)
                : !py::isinstance<py::str>(value) && !PyObject_CheckBuffer(value.ptr()) && !py::hasattr(value, "__fspath__"))
      throw py::type_error(name + (is_name ? " must be a str or None" : " must be a path (str or os.PathLike) or None"));
    std::string text = py::str(py::module_::import("os").attr("fsdecode")(value)).cast<std::string>();
    if (text.find('\0') != std::string::npos) throw py::value_error(name + " contains a NUL byte");
    strings.push_back(std::move(text));
    *fields[i] = strings.back().c_str();
    return true;
  }
  if (name == "ssl_cert_reqs") {
    const std::string v = py::isinstance<py::str>(value) ? value.cast<std::string>() : std::string("?");
    if (v != "required" && v != "none") throw py::value_error("ssl_cert_reqs must be 'required' or 'none'");
    o.ssl_cert_reqs = v == "none" ? HTTPCACHE_SSL_CERT_NONE : HTTPCACHE_SSL_CERT_REQUIRED;
    return true;
  }
  if (name == "ssl_check_hostname") {
    if (!PyBool_Check(value.ptr())) throw py::type_error("ssl_check_hostname must be True or False");
    o.ssl_check_hostname = value.ptr() == Py_True ? HTTPCACHE_SSL_CHECK_HOSTNAME : HTTPCACHE_SSL_NO_CHECK_HOSTNAME;
    return true;
  }
  return false;
}

httpcache_options options_from(const py::kwargs& kwargs, std::vector<std::string>& strings) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  strings.reserve(std::size(tls_string_options));  // no reallocation: the struct points into them
  for (auto [key, value] : kwargs) {
    const std::string name = key.cast<std::string>();
    if (set_tls_option(opts, name, value, strings)) continue;
    std::size_t i = option_index(name);
    option_setters[i](opts, option_value(core::option_table[i], value));
  }
  return opts;
}

// ---- The calls ----

std::unique_ptr<cache_object> open_cache(const std::optional<std::string>& url, const std::optional<std::string>& ns,
                                         const std::optional<std::string>& tz, const py::kwargs& options) {
  std::vector<std::string> strings;
  httpcache_options opts = options_from(options, strings);
  httpcache_cache* raw = nullptr;
  nogil([&] {
    return httpcache_cache_open(&raw, url ? url->c_str() : nullptr, ns ? ns->c_str() : nullptr,
                                tz ? tz->c_str() : nullptr, &opts);
  });
  return std::make_unique<cache_object>(cache_ptr(raw, &httpcache_cache_free));
}

py::bytes full_key(const cache_object& c, const std::string& key) {
  owned_buf out;
  int rc = httpcache_cache_full_key(&out.buf, c.handle(), key.data(), key.size());
  if (rc != HTTPCACHE_OK) raise_for(rc);
  return out.to_bytes();
}

int64_t ttl(const cache_object& c, const policy& p, std::optional<int64_t> now_ms) {
  int64_t out = 0;
  httpcache_ttl_policy cp = p.to_c();
  int rc = httpcache_cache_ttl(&out, c.handle(), &cp, now_ms ? *now_ms : now_unix_ms());
  if (rc != HTTPCACHE_OK) raise_for(rc);
  return out;
}

py::tuple get(const cache_object& c, const std::string& key) {
  cache_ptr h = c.shared();
  owned_buf value;
  int64_t ttl_ms = 0;
  nogil([&] { return httpcache_cache_get(&value.buf, &ttl_ms, h.get(), key.data(), key.size()); });
  return py::make_tuple(value.to_bytes(), ttl_ms);
}

// httpcache_cache_peek (no I/O: the GIL stays held). With `states` (a ValueMemo's dict: key ->
// (stored bytes, decoded)), a value equal to the one decoded under key comes back decoded, as an
// independent copy (copy_json), without making a bytes object: the near and memory:// hit of a
// plain result, in one call.
py::object peek(const cache_object& c, const py::bytes& key, const py::object& states) {
  cache_ptr h = c.shared();
  owned_buf value;
  int64_t ttl_ms = 0;
  const char* k = PyBytes_AS_STRING(key.ptr());
  const int rc = httpcache_cache_peek(&value.buf, &ttl_ms, h.get(), k, static_cast<size_t>(PyBytes_GET_SIZE(key.ptr())));
  if (rc == HTTPCACHE_ENOTFOUND) return py::none();
  if (rc != HTTPCACHE_OK) raise_for(rc);
  if (!states.is_none()) {
    PyObject* state = PyDict_GetItemWithError(states.ptr(), key.ptr());  // borrowed
    if (!state && PyErr_Occurred()) throw py::error_already_set();
    if (state && PyTuple_CheckExact(state) && PyTuple_GET_SIZE(state) == 2) {
      PyObject* stored = PyTuple_GET_ITEM(state, 0);
      if (PyBytes_CheckExact(stored) && static_cast<size_t>(PyBytes_GET_SIZE(stored)) == value.buf.size &&
          (value.buf.size == 0 || std::memcmp(PyBytes_AS_STRING(stored), value.buf.ptr, value.buf.size) == 0)) {
        // Held while copying: the copy allocates, which may run the collector and another thread,
        // whose store into `states` would otherwise free the tuple under us.
        py::object held = py::reinterpret_borrow<py::object>(state);
        PyObject* copy = copy_json_value(PyTuple_GET_ITEM(state, 1));
        if (copy) return py::make_tuple(py::reinterpret_steal<py::object>(copy), ttl_ms);
        PyErr_Clear();  // not copyable here (nested too deeply): the bytes, decoded by the caller
      }
    }
  }
  return py::make_tuple(value.to_bytes(), ttl_ms);
}

// peek() with the value's version (httpcache_cache_peek_version): (bytes, ttl_ms, version) or None.
py::object peek_version(const cache_object& c, const py::bytes& key) {
  cache_ptr h = c.shared();
  owned_buf value;
  int64_t ttl_ms = 0;
  uint64_t version = 0;
  const char* k = PyBytes_AS_STRING(key.ptr());
  const int rc = httpcache_cache_peek_version(&value.buf, &ttl_ms, &version, h.get(), k,
                                              static_cast<size_t>(PyBytes_GET_SIZE(key.ptr())), 0);
  if (rc == HTTPCACHE_ENOTFOUND) return py::none();
  if (rc != HTTPCACHE_OK) raise_for(rc);
  return py::make_tuple(value.to_bytes(), ttl_ms, version);
}

int64_t set(const cache_object& c, const std::string& key, const std::string& value, const policy& p) {
  cache_ptr h = c.shared();
  httpcache_ttl_policy cp = p.to_c();
  int64_t ttl_seconds = 0;
  nogil([&] {
    return httpcache_cache_set(&ttl_seconds, h.get(), key.data(), key.size(), value.data(), value.size(), &cp);
  });
  return ttl_seconds;
}

// Pointers and lengths of a list of byte strings, for the C calls (borrowed from `items`).
struct views {
  std::vector<const void*> ptrs;
  std::vector<size_t> lens;
  explicit views(const std::vector<std::string>& items) {
    for (const auto& s : items) {
      ptrs.push_back(s.data());
      lens.push_back(s.size());
    }
  }
};

size_t invalidate(const cache_object& c, const std::vector<std::string>& keys) {
  cache_ptr h = c.shared();
  views v(keys);
  size_t deleted = 0;
  nogil([&] { return httpcache_cache_invalidate(&deleted, h.get(), v.ptrs.data(), v.lens.data(), keys.size()); });
  return deleted;
}

void invalidate_tags(const cache_object& c, const std::vector<std::string>& tags) {
  cache_ptr h = c.shared();
  views v(tags);
  nogil([&] { return httpcache_cache_invalidate_tags(h.get(), v.ptrs.data(), v.lens.data(), tags.size()); });
}

py::tuple get_or_compute(const cache_object& c, const std::string& key, const policy& p, py::function compute,
                         const std::vector<std::string>& tags, std::pair<int64_t, int64_t> stale) {
  cache_ptr h = c.shared();
  httpcache_ttl_policy cp = p.to_c();
  compute_state state{compute, std::nullopt, h.get(), &key};
  views tag_views(tags);
  const auto since = clock_type::now();
  owned_buf value;
  int64_t ttl_ms = 0;
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_UNCACHED;
  httpcache_call call = HTTPCACHE_CALL_INIT;
  call.tags = tag_views.ptrs.data();
  call.tag_lens = tag_views.lens.data();
  call.ntags = tags.size();
  call.stale_while_revalidate_ms = stale.first;
  call.stale_if_error_ms = stale.second;
  captured_error err = call_nogil([&] {
    return httpcache_cache_get_or_compute_ex(&value.buf, &ttl_ms, &outcome, h.get(), key.data(), key.size(), &cp,
                                             &call, &compute_trampoline, &state);
  });
  // The callable's own exception comes back unchanged (same object, same traceback), unless a
  // stale entry answered it (stale-if-error): then it is the call's `failure`.
  if (state.error && outcome == HTTPCACHE_OUTCOME_STALE && err.code == HTTPCACHE_OK)
    return py::make_tuple(value.to_bytes(), ttl_ms, static_cast<int>(outcome), state.error->value());
  if (state.error) throw std::move(*state.error);
  if (err.code == HTTPCACHE_EUSER) {
    // A waiter of a flight whose computation raised: the same exception object.
    if (py::object shared = kept_failure_for(h.get(), key, since)) {
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(shared.ptr())), shared.ptr());
      throw py::error_already_set();
    }
  }
  err.raise_if_failed();
  // Why an UNCACHED call failed open, if the backend failed (the library says so in the last
  // error of a call that returned OK), else None.
  py::object failure = py::none();
  if (outcome == HTTPCACHE_OUTCOME_UNCACHED && httpcache_error_last()->code == HTTPCACHE_EBACKEND)
    failure = py::str(httpcache_error_last()->message);
  return py::make_tuple(value.to_bytes(), ttl_ms, static_cast<int>(outcome), std::move(failure));
}

py::dict stats(const cache_object& c) {
  httpcache_stats st = HTTPCACHE_STATS_INIT;
  int rc = httpcache_cache_stats(&st, c.handle());
  if (rc != HTTPCACHE_OK) raise_for(rc);
  py::dict d;
  d["hits"] = st.hits;
  d["misses"] = st.misses;
  d["stores"] = st.stores;
  d["errors"] = st.errors;
  d["breaker_trips"] = st.breaker_trips;
  d["breaker_skips"] = st.breaker_skips;
  d["uncached"] = st.uncached;
  d["oversized"] = st.oversized;
  d["coalesced"] = st.coalesced;
  d["breaker_open"] = st.breaker_open != 0;
  d["near_hits"] = st.near_hits;
  d["near_invalidations"] = st.near_invalidations;
  d["near_flushes"] = st.near_flushes;
  return d;
}

// ---- The class ----

using cache_class = py::class_<cache_object>;

void def_lifecycle(cache_class& cls) {
  cls.def(py::init(&open_cache), py::arg("url") = py::none(), py::arg("namespace") = py::none(),
          py::arg("tz") = py::none(),
          "Opens a handle (httpcache_cache_open); 0 means the library default (for lock_ttl_ms: no "
          "cross-process lock). ValueError for a bad URL, namespace or zone. Redis connects lazily.")
      .def_property_readonly("namespace",
                             [](const cache_object& c) { return std::string(httpcache_cache_namespace(c.handle())); })
      .def_property_readonly("timezone",
                             [](const cache_object& c) { return std::string(httpcache_cache_timezone(c.handle())); })
      .def_property_readonly("closed", [](const cache_object& c) { return !c.is_open(); })
      .def("close", &cache_object::close, "Releases the handle (calls in flight keep it until they return).")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](cache_object& c, py::args) { c.close(); });
}

void def_calls(cache_class& cls) {
  cls.def("full_key", &full_key, py::arg("key"), "The backend key: namespace:key.")
      .def("ttl", &ttl, py::arg("policy"), py::arg("now_ms") = py::none(),
           "TTL seconds of `policy` in the handle's zone.")
      .def("get", &get, py::arg("key"),
           "(value, remaining ttl_ms). CacheMiss on a miss; httpcache.Error when the backend fails.")
      .def("peek", &peek, py::arg("key"), py::arg("states") = py::none(),
           "get() answered from this process alone (near tier, memory://), never blocking: (value, "
           "ttl_ms) or None. With a ValueMemo's states, a value equal to its key's decoded one comes "
           "back as an independent decoded copy instead of bytes.")
      .def("peek_version", &peek_version, py::arg("key"),
           "peek() with the version of the value held: (value, ttl_ms, version) or None; version 0: the "
           "store gives none (see HitPath).")
      .def("set", &set, py::arg("key"), py::arg("value"), py::arg("policy"),
           "Stores value; returns the TTL applied (seconds).")
      .def("invalidate", &invalidate, py::arg("keys"), "Deletes keys in one round trip; returns how many existed.")
      .def("get_or_compute", &get_or_compute, py::arg("key"), py::arg("policy"), py::arg("compute"),
           py::arg("tags") = std::vector<std::string>(), py::arg("stale") = std::pair<int64_t, int64_t>(0, 0),
           "(value, ttl_ms, outcome, failure). On a miss compute() runs once, with the GIL, and returns "
           "bytes or (bytes, store). Fails open: a backend failure runs compute and returns uncached, "
           "failure saying why (else None). With tags, a hit must carry their current generations. "
           "stale: (stale-while-revalidate ms, stale-if-error ms) of what it stores; compute may return "
           "(bytes, store, (swr_ms, sie_ms)) to set its own. OUTCOME_STALE: a stale entry served (failure: "
           "the exception it answered, within stale-if-error).")
      .def("invalidate_tags", &invalidate_tags, py::arg("tags"),
           "Gives each tag a new generation: every entry stored under one of them misses from now on.")
      .def("stats", &stats, "The handle's counters (httpcache_cache_stats) as a dict.");
}

}  // namespace

httpcache_cache* cache_object::handle() const {
  if (!handle_) throw py::value_error("the cache is closed");
  return handle_.get();
}

cache_ptr cache_object::shared() const {
  handle();
  return handle_;
}

void cache_object::close() { handle_.reset(); }

void init_cache(py::module_& m) {
  m.attr("OUTCOME_HIT") = static_cast<int>(HTTPCACHE_OUTCOME_HIT);
  m.attr("OUTCOME_STORED") = static_cast<int>(HTTPCACHE_OUTCOME_STORED);
  m.attr("OUTCOME_UNCACHED") = static_cast<int>(HTTPCACHE_OUTCOME_UNCACHED);
  m.attr("OUTCOME_COALESCED") = static_cast<int>(HTTPCACHE_OUTCOME_COALESCED);
  m.attr("OUTCOME_STALE") = static_cast<int>(HTTPCACHE_OUTCOME_STALE);
  m.attr("OPTIONS") = options_tuple();
  py::tuple tls_names(std::size(tls_string_options) + 2);
  for (std::size_t i = 0; i < std::size(tls_string_options); ++i) tls_names[i] = py::str(tls_string_options[i]);
  tls_names[std::size(tls_string_options)] = py::str("ssl_cert_reqs");
  tls_names[std::size(tls_string_options) + 1] = py::str("ssl_check_hostname");
  m.attr("TLS_OPTIONS") = tls_names;

  cache_class cls(m, "Cache", "A cache handle (httpcache_cache): a backend, a namespace and a zone.");
  def_lifecycle(cls);
  def_calls(cls);
}

}  // namespace httpcache_py
