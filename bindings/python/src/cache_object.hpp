// SPDX-License-Identifier: MIT
// The Python-side owner of a cache handle, shared by cache.cpp and async.cpp.
#pragma once

#include "binding.hpp"

namespace httpcache_py {

class cache_object {
 public:
  explicit cache_object(cache_ptr h) : handle_(std::move(h)) {}
  // The handle, or ValueError when closed. Borrowed: use only while the GIL is held.
  httpcache_cache* handle() const;
  // A reference that keeps the handle alive across a call that releases the GIL.
  cache_ptr shared() const;
  bool is_open() const { return static_cast<bool>(handle_); }
  void close();

 private:
  cache_ptr handle_;
};

}  // namespace httpcache_py
