// SPDX-License-Identifier: MIT
// TTL policies and the pure TTL computation (httpcache_ttl_compute).
#include <pybind11/stl.h>

#include <optional>

#include "binding.hpp"

namespace httpcache_py {

namespace {

// TTL_CALLBACK trampoline. It may run on a thread that released the GIL (inside a blocking call),
// so it re-acquires it. A Python exception cannot cross the C library: it is reported as
// unraisable and the TTL becomes 0, which the library rejects (EINVALID).
int64_t call_python_ttl(void* payload) {
  py::gil_scoped_acquire gil;
  try {
    py::object r = py::reinterpret_borrow<py::object>(static_cast<PyObject*>(payload))();
    return r.cast<int64_t>();
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("httpcache TTL callback");
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_TypeError, (std::string("httpcache TTL callback: ") + e.what()).c_str());
    PyErr_WriteUnraisable(nullptr);
  }
  return 0;
}

}  // namespace

httpcache_ttl_policy policy::to_c() const {
  httpcache_ttl_policy p{};
  p.kind = kind;
  p.seconds = seconds;
  if (kind == HTTPCACHE_TTL_CALLBACK && callback && !callback.is_none()) {
    p.callback = &call_python_ttl;
    p.payload = callback.ptr();  // kept alive by the policy object for the whole call
  }
  return p;
}

void init_ttl(py::module_& m) {
  m.attr("TTL_SECONDS") = static_cast<int>(HTTPCACHE_TTL_SECONDS);
  m.attr("TTL_END_OF_DAY") = static_cast<int>(HTTPCACHE_TTL_END_OF_DAY);
  m.attr("TTL_END_OF_WEEK") = static_cast<int>(HTTPCACHE_TTL_END_OF_WEEK);
  m.attr("TTL_CALLBACK") = static_cast<int>(HTTPCACHE_TTL_CALLBACK);

  py::class_<policy>(m, "Policy", "A TTL policy (httpcache_ttl_policy). Build with the static methods.")
      .def_static("seconds", [](int64_t s) { return policy{HTTPCACHE_TTL_SECONDS, s, py::none()}; },
                  py::arg("seconds"), "Expire after `seconds` seconds (> 0, checked when used).")
      .def_static("end_of_day", [] { return policy{HTTPCACHE_TTL_END_OF_DAY, 0, py::none()}; },
                  "Expire at the next local midnight in the cache's zone.")
      .def_static("end_of_week", [] { return policy{HTTPCACHE_TTL_END_OF_WEEK, 0, py::none()}; },
                  "Expire at the next Monday 00:00 local in the cache's zone.")
      .def_static("callback",
                  [](py::function fn) { return policy{HTTPCACHE_TTL_CALLBACK, 0, std::move(fn)}; },
                  py::arg("fn"),
                  "Expire after fn() seconds; fn runs when the entry is stored, on the storing thread.")
      .def_readonly("kind", &policy::kind)
      .def_readonly("ttl_seconds", &policy::seconds)
      .def("__repr__", [](const policy& p) {
        switch (p.kind) {
          case HTTPCACHE_TTL_SECONDS: return "Policy.seconds(" + std::to_string(p.seconds) + ")";
          case HTTPCACHE_TTL_END_OF_DAY: return std::string("Policy.end_of_day()");
          case HTTPCACHE_TTL_END_OF_WEEK: return std::string("Policy.end_of_week()");
          default: return std::string("Policy.callback(...)");
        }
      });

  m.def(
      "ttl_compute",
      [](const policy& p, std::optional<std::string> tz, int64_t now_ms) {
        int64_t out = 0;
        httpcache_ttl_policy c = p.to_c();
        int rc = httpcache_ttl_compute(&out, &c, tz ? tz->c_str() : nullptr, now_ms);
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out;
      },
      py::arg("policy"), py::arg("tz"), py::arg("now_ms"),
      "Seconds from now_ms (ms since the epoch) until `policy` expires an entry in zone tz "
      "(IANA name; None means UTC). ValueError for an unknown zone or a bad policy.");

  m.def(
      "tzdata_version", [] { return std::string(httpcache_tzdata_version()); },
      "The IANA time zone database release the TTLs are computed with (httpcache_tzdata_version).");
}

}  // namespace httpcache_py
