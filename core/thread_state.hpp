// SPDX-License-Identifier: MIT
// Per-thread state that has a destructor (strings, buffers), made so that every toolchain we
// build with gets it right. MinGW-w64's GCC 12 runs the destructors of `thread_local` objects in a
// DLL (__cxa_thread_atexit) wrongly once the thread has also thrown a C++ exception: the thread's
// exit frees a bad pointer and the process crashes (reproduced in ten lines under Wine). There
// the object lives on the heap, reached through a trivially destructible thread_local pointer,
// and a pthread key's destructor deletes it at thread exit; elsewhere it is a plain thread_local.
#pragma once

#ifdef _WIN32
#include <pthread.h>

#include <mutex>
#endif

namespace httpcache {

// The calling thread's T, value-initialized on its first use. Tag makes each use its own state
// (two uses with one T and different tags never share an object).
template <typename Tag, typename T>
T& thread_state() {
#ifdef _WIN32
  static pthread_key_t key;
  static std::once_flag once;
  thread_local T* mine = nullptr;
  if (!mine) {
    std::call_once(once, [] { pthread_key_create(&key, [](void* p) { delete static_cast<T*>(p); }); });
    mine = new T();
    pthread_setspecific(key, mine);
  }
  return *mine;
#else
  thread_local T value{};
  return value;
#endif
}

}  // namespace httpcache
