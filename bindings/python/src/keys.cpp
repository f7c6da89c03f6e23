// SPDX-License-Identifier: MIT
// Key templates (httpcache_key_format): one implementation for every language.
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"

namespace httpcache_py {

void init_keys(py::module_& m) {
  m.def(
      "key_format",
      [](const py::bytes& tmpl, const std::vector<std::string>& args) {
        std::vector<httpcache_slice> slices;
        slices.reserve(args.size());
        for (const auto& a : args) slices.push_back(httpcache_slice{a.data(), a.size()});
        std::string_view t = tmpl;
        owned_buf out;
        int rc = httpcache_key_format(&out.buf, t.data(), t.size(), slices.data(), slices.size());
        if (rc != HTTPCACHE_OK) raise_for(rc);
        return out.to_bytes();
      },
      py::arg("template"), py::arg("args"),
      "Fills each `{}` of a key template with the next argument (bytes). ValueError for a "
      "malformed template, a field/argument count mismatch, an empty or over-long key.");
}

}  // namespace httpcache_py
