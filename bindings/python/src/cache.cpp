// SPDX-License-Identifier: MIT
// httpcache._httpcache.Cache: a cache handle and the blocking calls. Every call that may wait on
// the backend releases the GIL; arguments are converted to C++ values before, results to Python
// objects after, and Python code (compute and TTL callbacks) re-acquires it.
#include <pybind11/stl.h>

#include <chrono>
#include <optional>
#include <vector>

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
};

// httpcache_compute_cb over a Python callable returning bytes or (bytes, store: bool).
int compute_trampoline(httpcache_buf* value, uint32_t* flags, void* payload) {
  auto* state = static_cast<compute_state*>(payload);
  py::gil_scoped_acquire gil;
  try {
    py::object result = state->fn();
    py::object data = result;
    if (PyTuple_Check(result.ptr())) {
      py::tuple t = py::reinterpret_borrow<py::tuple>(result);
      if (t.size() != 2) throw py::type_error("compute must return bytes or (bytes, store)");
      data = t[0];
      if (!PyObject_IsTrue(t[1].ptr())) *flags |= HTTPCACHE_COMPUTE_DONT_STORE;
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
  return HTTPCACHE_EUSER;
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

  py::class_<cache_object>(m, "Cache", "A cache handle (httpcache_cache): a backend, a namespace and a zone.")
      .def(py::init([](std::optional<std::string> url, std::optional<std::string> ns, std::optional<std::string> tz,
                       uint32_t connect_timeout_ms, uint32_t command_timeout_ms, uint32_t pool_size,
                       uint64_t memory_max_entries, uint64_t memory_max_bytes, uint64_t max_value_bytes,
                       uint32_t breaker_failures, uint32_t breaker_cooldown_ms, uint32_t singleflight_wait_ms,
                       uint32_t lock_ttl_ms) {
             httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
             opts.connect_timeout_ms = connect_timeout_ms;
             opts.command_timeout_ms = command_timeout_ms;
             opts.pool_size = pool_size;
             opts.memory_max_entries = memory_max_entries;
             opts.memory_max_bytes = memory_max_bytes;
             opts.max_value_bytes = max_value_bytes;
             opts.breaker_failures = breaker_failures;
             opts.breaker_cooldown_ms = breaker_cooldown_ms;
             opts.singleflight_wait_ms = singleflight_wait_ms;
             opts.lock_ttl_ms = lock_ttl_ms;
             httpcache_cache* raw = nullptr;
             int rc;
             captured_error err;
             {
               // An explicit scope rather than call_guard on py::init (reported to crash).
               py::gil_scoped_release nogil;
               rc = httpcache_cache_open(&raw, url ? url->c_str() : nullptr, ns ? ns->c_str() : nullptr,
                                         tz ? tz->c_str() : nullptr, &opts);
               if (rc != HTTPCACHE_OK) err = captured_error::last(rc);
             }
             if (rc != HTTPCACHE_OK) raise_captured(err);
             return std::make_unique<cache_object>(cache_ptr(raw, &httpcache_cache_free));
           }),
           py::arg("url") = py::none(), py::arg("namespace") = py::none(), py::arg("tz") = py::none(),
           py::kw_only(), py::arg("connect_timeout_ms") = 0, py::arg("command_timeout_ms") = 0,
           py::arg("pool_size") = 0, py::arg("memory_max_entries") = 0, py::arg("memory_max_bytes") = 0,
           py::arg("max_value_bytes") = 0, py::arg("breaker_failures") = 0, py::arg("breaker_cooldown_ms") = 0,
           py::arg("singleflight_wait_ms") = 0, py::arg("lock_ttl_ms") = 0,
           "Opens a handle (httpcache_cache_open); 0 means the library default (for lock_ttl_ms: no "
           "cross-process lock). ValueError for a bad URL, namespace or zone. Redis connects lazily.")
      .def_property_readonly("namespace",
                             [](const cache_object& c) { return std::string(httpcache_cache_namespace(c.handle())); })
      .def_property_readonly("timezone",
                             [](const cache_object& c) { return std::string(httpcache_cache_timezone(c.handle())); })
      .def_property_readonly("closed", [](const cache_object& c) { return !c.is_open(); })
      .def(
          "full_key",
          [](const cache_object& c, const std::string& key) {
            owned_buf out;
            int rc = httpcache_cache_full_key(&out.buf, c.handle(), key.data(), key.size());
            if (rc != HTTPCACHE_OK) raise_for(rc);
            return out.to_bytes();
          },
          py::arg("key"), "The backend key: namespace:key.")
      .def(
          "ttl",
          [](const cache_object& c, const policy& p, std::optional<int64_t> now_ms) {
            int64_t out = 0;
            httpcache_ttl_policy cp = p.to_c();
            int rc = httpcache_cache_ttl(&out, c.handle(), &cp, now_ms ? *now_ms : now_unix_ms());
            if (rc != HTTPCACHE_OK) raise_for(rc);
            return out;
          },
          py::arg("policy"), py::arg("now_ms") = py::none(), "TTL seconds of `policy` in the handle's zone.")
      .def(
          "get",
          [](const cache_object& c, const std::string& key) {
            cache_ptr h = c.shared();
            owned_buf value;
            int64_t ttl_ms = 0;
            int rc;
            captured_error err;
            {
              py::gil_scoped_release nogil;
              rc = httpcache_cache_get(&value.buf, &ttl_ms, h.get(), key.data(), key.size());
              if (rc != HTTPCACHE_OK) err = captured_error::last(rc);
            }
            if (rc != HTTPCACHE_OK) raise_captured(err);
            return py::make_tuple(value.to_bytes(), ttl_ms);
          },
          py::arg("key"),
          "(value, remaining ttl_ms). CacheMiss on a miss; httpcache.Error when the backend fails.")
      .def(
          "set",
          [](const cache_object& c, const std::string& key, const std::string& value, const policy& p) {
            cache_ptr h = c.shared();
            httpcache_ttl_policy cp = p.to_c();
            int64_t ttl_seconds = 0;
            int rc;
            captured_error err;
            {
              py::gil_scoped_release nogil;
              rc = httpcache_cache_set(&ttl_seconds, h.get(), key.data(), key.size(), value.data(), value.size(), &cp);
              if (rc != HTTPCACHE_OK) err = captured_error::last(rc);
            }
            if (rc != HTTPCACHE_OK) raise_captured(err);
            return ttl_seconds;
          },
          py::arg("key"), py::arg("value"), py::arg("policy"), "Stores value; returns the TTL applied (seconds).")
      .def(
          "invalidate",
          [](const cache_object& c, const std::vector<std::string>& keys) {
            cache_ptr h = c.shared();
            std::vector<const void*> ptrs;
            std::vector<size_t> lens;
            for (const auto& k : keys) {
              ptrs.push_back(k.data());
              lens.push_back(k.size());
            }
            size_t deleted = 0;
            int rc;
            captured_error err;
            {
              py::gil_scoped_release nogil;
              rc = httpcache_cache_invalidate(&deleted, h.get(), ptrs.data(), lens.data(), keys.size());
              if (rc != HTTPCACHE_OK) err = captured_error::last(rc);
            }
            if (rc != HTTPCACHE_OK) raise_captured(err);
            return deleted;
          },
          py::arg("keys"), "Deletes keys in one round trip; returns how many existed.")
      .def(
          "get_or_compute",
          [](const cache_object& c, const std::string& key, const policy& p, py::function compute) {
            cache_ptr h = c.shared();
            httpcache_ttl_policy cp = p.to_c();
            compute_state state{compute, std::nullopt};
            owned_buf value;
            int64_t ttl_ms = 0;
            httpcache_outcome outcome = HTTPCACHE_OUTCOME_UNCACHED;
            int rc;
            captured_error err;
            {
              py::gil_scoped_release nogil;
              rc = httpcache_cache_get_or_compute(&value.buf, &ttl_ms, &outcome, h.get(), key.data(), key.size(), &cp,
                                                  &compute_trampoline, &state);
              if (rc != HTTPCACHE_OK) err = captured_error::last(rc);
            }
            // The callable's own exception comes back unchanged (same object, same traceback).
            if (state.error) throw std::move(*state.error);
            if (rc != HTTPCACHE_OK) raise_captured(err);
            return py::make_tuple(value.to_bytes(), ttl_ms, static_cast<int>(outcome));
          },
          py::arg("key"), py::arg("policy"), py::arg("compute"),
          "(value, ttl_ms, outcome). On a miss compute() runs once, with the GIL, and returns bytes "
          "or (bytes, store). Fails open: a backend failure runs compute and returns uncached.")
      .def(
          "stats",
          [](const cache_object& c) {
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
            return d;
          },
          "The handle's counters (httpcache_cache_stats) as a dict.")
      .def("close", &cache_object::close, "Releases the handle (calls in flight keep it until they return).")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](cache_object& c, py::args) { c.close(); });
}

}  // namespace httpcache_py
