// SPDX-License-Identifier: MIT
// httpcache._httpcache: a thin pybind11 layer over the public C ABI (include/httpcache.h) only;
// the pure-Python package httpcache/ builds the decorators on top of it.
#include "binding.hpp"

PYBIND11_MODULE(_httpcache, m) {
  m.doc() = "Private binding of the httpcache C ABI; use the httpcache package instead.";
  // Exceptions first: every other init may raise through raise_for().
  httpcache_py::init_errors(m);
  httpcache_py::init_ttl(m);
  httpcache_py::init_keys(m);
  httpcache_py::init_cache(m);
  httpcache_py::init_async(m);
  httpcache_py::init_response(m);
  httpcache_py::init_copy(m);
  httpcache_py::init_hit_path(m);
}
