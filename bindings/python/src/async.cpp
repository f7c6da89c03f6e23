// SPDX-License-Identifier: MIT
// httpcache._httpcache.AsyncContext: the non-blocking calls (httpcache_async_*), driven by a host
// event loop. Everything here runs on the loop's thread with the GIL held: nothing blocks (the
// library only does non-blocking I/O inside these calls), so releasing the GIL would cost more
// than it could give. Completions resolve the caller's future directly, inside process() (or
// inside the start call on memory://): no thread, no cross-thread wake-up.
#include <pybind11/stl.h>

#include <utility>
#include <vector>

#include "cache_object.hpp"

namespace httpcache_py {

namespace {

// Attribute names looked up on every completion, interned once (module lifetime, never freed).
PyObject* str_done = nullptr;
PyObject* str_set_result = nullptr;

// Resolves `future` (anything with done() and set_result(), e.g. an asyncio.Future) with `result`
// unless it is already done (cancelled by its awaiter). A Python error cannot cross the C library:
// one raised here is reported as unraisable, except on cancellation at close, when the future's
// loop is usually gone and there is nobody left to tell.
void resolve(PyObject* future_ref, int status, py::object result) {
  py::object future = py::reinterpret_steal<py::object>(future_ref);
  try {
    py::object done = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(future.ptr(), str_done));
    if (!done) throw py::error_already_set();
    if (PyObject_IsTrue(done.ptr())) return;
    py::object r =
        py::reinterpret_steal<py::object>(PyObject_CallMethodOneArg(future.ptr(), str_set_result, result.ptr()));
    if (!r) throw py::error_already_set();
  } catch (py::error_already_set& e) {
    if (status == HTTPCACHE_ECANCELED) return;  // e's destructor drops the error
    e.discard_as_unraisable("httpcache async completion");
  }
}

// A backend failure's message (the library describes it during the callback only), so that the
// log can say why: "refused AUTH: WRONGPASS ...", not just "backend error".
bool failed(int status) { return status == HTTPCACHE_EBACKEND || status == HTTPCACHE_ETIMEOUT; }
py::object failure_message() { return py::str(httpcache_error_last()->message); }

void on_get(int status, const void* value, size_t value_len, int64_t ttl_ms, void* payload) {
  py::gil_scoped_acquire gil;
  // A tagged miss describes the tags' generations it read (bytes); any other miss has none.
  // A stale entry to refresh (ESTALE) comes with its value.
  const bool described_miss = status == HTTPCACHE_ENOTFOUND && value_len > 0;
  const bool with_value = status == HTTPCACHE_OK || status == HTTPCACHE_ESTALE || described_miss;
  py::object v = with_value       ? py::object(py::bytes(static_cast<const char*>(value), value_len))
                 : failed(status) ? failure_message()
                                  : py::object(py::none());
  resolve(static_cast<PyObject*>(payload), status, py::make_tuple(status, std::move(v), ttl_ms));
}

void on_done(int status, int64_t count, void* payload) {
  py::gil_scoped_acquire gil;
  py::object n = failed(status) ? failure_message() : py::object(py::int_(count));
  resolve(static_cast<PyObject*>(payload), status, py::make_tuple(status, std::move(n)));
}

}  // namespace

class async_context {
  // Pointers and lengths of byte strings for the C calls, borrowed from the list.
  struct list {
    std::vector<const void*> ptrs;
    std::vector<size_t> lens;
    explicit list(const std::vector<std::string>& items) {
      for (const auto& s : items) {
        ptrs.push_back(s.data());
        lens.push_back(s.size());
      }
    }
    httpcache_call call() const {  // these as a call's tags
      httpcache_call c = HTTPCACHE_CALL_INIT;
      c.tags = ptrs.data();
      c.tag_lens = lens.data();
      c.ntags = ptrs.size();
      return c;
    }
  };

 public:
  async_context(const cache_object& cache, py::object watch) : cache_(cache.shared()), watch_(std::move(watch)) {
    httpcache_async* raw = nullptr;
    int rc = httpcache_async_open(&raw, cache_.get(), &async_context::on_watch, this);
    if (rc != HTTPCACHE_OK) raise_for(rc);
    ctx_ = raw;
  }
  async_context(const async_context&) = delete;
  async_context& operator=(const async_context&) = delete;
  ~async_context() { close(); }

  // Pending requests complete with ECANCELED and the watch callback is told to stop watching,
  // both inside this call. The context is freed before the handle it borrows from (cache_).
  void close() {
    if (!ctx_) return;
    httpcache_async* c = ctx_;
    ctx_ = nullptr;
    httpcache_async_free(c);
  }

  // Each start call hands the future (a new reference) to the library as the payload; the
  // completion steals it back. On a start failure (bad key) the completion never runs, so the
  // reference is dropped here and the error raised.
  void get(const std::string& key, py::object future, const std::vector<std::string>& tags) {
    PyObject* f = future.release().ptr();
    if (tags.empty()) return start([&] { return httpcache_async_get(ctx(), key.data(), key.size(), &on_get, f); }, f);
    list t(tags);
    httpcache_call call = t.call();
    start([&] { return httpcache_async_get_ex(ctx(), key.data(), key.size(), &call, &on_get, f); }, f);
  }

  void set(const std::string& key, const std::string& value, const policy& p, py::object future,
           const std::vector<std::string>& tags, std::pair<int64_t, int64_t> stale) {
    httpcache_ttl_policy cp = p.to_c();
    list t(tags);
    httpcache_call call = t.call();
    call.stale_while_revalidate_ms = stale.first;
    call.stale_if_error_ms = stale.second;
    PyObject* f = future.release().ptr();
    start([&] {
      return httpcache_async_set_ex(ctx(), key.data(), key.size(), value.data(), value.size(), &cp, &call, &on_done, f);
    }, f);
  }

  void invalidate_tags(const std::vector<std::string>& tags, py::object future) {
    list t(tags);
    PyObject* f = future.release().ptr();
    start([&] { return httpcache_async_invalidate_tags(ctx(), t.ptrs.data(), t.lens.data(), tags.size(), &on_done, f); },
          f);
  }

  void invalidate(const std::vector<std::string>& keys, py::object future) {
    list k(keys);
    PyObject* f = future.release().ptr();
    start([&] { return httpcache_async_invalidate(ctx(), k.ptrs.data(), k.lens.data(), keys.size(), &on_done, f); }, f);
  }

  void release(const std::string& key, py::object future) {
    PyObject* f = future.release().ptr();
    start([&] { return httpcache_async_release(ctx(), key.data(), key.size(), &on_done, f); }, f);
  }

  // Called by the loop when the descriptor is ready (or with 0 when a deadline passed). A no-op
  // after close(), since a reader callback may still be queued in the loop.
  void process(uint32_t events) {
    if (!ctx_) return;
    int rc = httpcache_async_process(ctx_, events);
    if (rc != HTTPCACHE_OK) raise_for(rc);
  }

  int64_t timeout_ms() const { return ctx_ ? httpcache_async_timeout_ms(ctx_) : -1; }
  size_t pending() const { return ctx_ ? httpcache_async_pending(ctx_) : 0; }
  bool closed() const { return ctx_ == nullptr; }

 private:
  // A lone request on an established connection is written inside the start call by the library
  // itself, which then tells the watcher only the net change of interest (usually none), so the
  // common request costs no watcher call and no loop callback.
  template <class Start>
  void start(Start&& call, PyObject* future) {
    if (!ctx_) {
      Py_DECREF(future);
      throw py::value_error("the async context is closed");
    }
    int rc = call();
    if (rc != HTTPCACHE_OK) {
      captured_error err = captured_error::last(rc);  // before Py_DECREF can run Python code
      Py_DECREF(future);
      raise_captured(err);
    }
  }

  httpcache_async* ctx() const {
    if (!ctx_) throw py::value_error("the async context is closed");
    return ctx_;
  }

  static void on_watch(httpcache_fd fd, uint32_t events, void* payload) {
    auto* self = static_cast<async_context*>(payload);
    py::gil_scoped_acquire gil;
    try {
      self->watch_(fd, events);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("httpcache async watch callback");
    }
  }

  cache_ptr cache_;  // declared first: destroyed after ctx_ is freed
  py::object watch_;
  httpcache_async* ctx_ = nullptr;
};

void init_async(py::module_& m) {
  str_done = PyUnicode_InternFromString("done");
  str_set_result = PyUnicode_InternFromString("set_result");
  if (!str_done || !str_set_result) throw py::error_already_set();
  m.attr("EV_READ") = static_cast<int>(HTTPCACHE_EV_READ);
  m.attr("EV_WRITE") = static_cast<int>(HTTPCACHE_EV_WRITE);

  py::class_<async_context>(m, "AsyncContext",
                            "A non-blocking context (httpcache_async) for one event loop's thread.")
      .def(py::init<const cache_object&, py::object>(), py::arg("cache"), py::arg("watch"),
           py::keep_alive<1, 2>(),
           "watch(fd, events) is called whenever the events to watch on fd change (0: stop).")
      .def("get", &async_context::get, py::arg("key"), py::arg("future"), py::arg("tags") = std::vector<std::string>(),
           "Starts a lookup; future gets (status, value, ttl_ms): value is bytes on a hit, the error "
           "message (str) on EBACKEND/ETIMEOUT, else None.")
      .def("set", &async_context::set, py::arg("key"), py::arg("value"), py::arg("policy"), py::arg("future"),
           py::arg("tags") = std::vector<std::string>(), py::arg("stale") = std::pair<int64_t, int64_t>(0, 0),
           "Starts a store; future gets (status, ttl_seconds applied, or the error message on "
           "EBACKEND/ETIMEOUT). ValueError for a bad key, "
           "policy or an oversized value (the future is untouched).")
      .def("invalidate", &async_context::invalidate, py::arg("keys"), py::arg("future"),
           "Starts deleting keys; future gets (status, deleted, or the error message on EBACKEND/ETIMEOUT).")
      .def("invalidate_tags", &async_context::invalidate_tags, py::arg("tags"), py::arg("future"),
           "Starts giving each tag a new generation; future gets (status, 0, or the error message).")
      .def("release", &async_context::release, py::arg("key"), py::arg("future"),
           "Gives up the lease this context's miss of key took (nothing will be stored); future gets "
           "(status, 1 if the placeholder was deleted else 0, or the error message on EBACKEND/ETIMEOUT).")
      .def("process", &async_context::process, py::arg("events"),
           "Does the I/O the ready events allow and runs completions; 0 only checks deadlines.")
      .def("timeout_ms", &async_context::timeout_ms, "ms until the earliest deadline (0 if passed); -1 if idle.")
      .def("pending", &async_context::pending)
      .def_property_readonly("closed", &async_context::closed)
      .def("close", &async_context::close, "Cancels pending requests (ECANCELED) and stops watching.");
}

}  // namespace httpcache_py
