/* SPDX-License-Identifier: MIT
 * A consumer that neither links nor calls libhttpcache directly: it dlopen()s the built library and
 * resolves every function it uses with dlsym(), as FFI bindings do. httpcache.h is included for its
 * types and constants only (calling a declared function directly would fail to link). */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

#ifndef HTTPCACHE_LIBRARY_PATH
#  error "HTTPCACHE_LIBRARY_PATH must name the built libhttpcache (CMake defines it)"
#endif

/* The functions this consumer uses, resolved at run time. */
typedef struct api {
  void *handle;
  int (*version_number)(void);
  const char *(*version_string)(void);
  const httpcache_error *(*error_last)(void);
  const char *(*strerror_)(int);
  int (*cache_open)(httpcache_cache **, const char *, const char *, const char *, const httpcache_options *);
  void (*cache_free)(httpcache_cache *);
  int (*cache_get_or_compute)(httpcache_buf *, int64_t *, httpcache_outcome *, httpcache_cache *, const void *,
                              size_t, const httpcache_ttl_policy *, httpcache_compute_cb, void *);
  int (*cache_get)(httpcache_buf *, int64_t *, httpcache_cache *, const void *, size_t);
  int (*cache_invalidate)(size_t *, httpcache_cache *, const void *const *, const size_t *, size_t);
  int (*buf_set)(httpcache_buf *, const void *, size_t);
  void (*buf_dispose)(httpcache_buf *);
} api;

static api lib;

/* dlsym() returns an object pointer; copying its bytes into a function pointer is the portable
 * POSIX idiom that stays warning-free under -pedantic. */
#define RESOLVE(field, name)                                     \
  do {                                                           \
    void *sym_ = dlsym(lib.handle, name);                        \
    if (!sym_) fail_msg("dlsym(%s): %s", name, dlerror());       \
    memcpy(&lib.field, &sym_, sizeof sym_);                      \
  } while (0)

static int load_library(void **state) {
  (void)state;
  memset(&lib, 0, sizeof lib);
  lib.handle = dlopen(HTTPCACHE_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
  if (!lib.handle) {
    print_error("dlopen(%s): %s\n", HTTPCACHE_LIBRARY_PATH, dlerror());
    return -1;
  }
  return 0;
}

static int unload_library(void **state) {
  (void)state;
  if (lib.handle && dlclose(lib.handle) != 0) {
    print_error("dlclose: %s\n", dlerror());
    return -1;
  }
  lib.handle = NULL;
  return 0;
}

/** Every function the consumer uses resolves by its exported name. */
static void test_dlopen_resolves_every_function(void **state) {
  (void)state;
  assert_non_null(lib.handle);
  RESOLVE(version_number, "httpcache_version_number");
  RESOLVE(version_string, "httpcache_version_string");
  RESOLVE(error_last, "httpcache_error_last");
  RESOLVE(strerror_, "httpcache_strerror");
  RESOLVE(cache_open, "httpcache_cache_open");
  RESOLVE(cache_free, "httpcache_cache_free");
  RESOLVE(cache_get_or_compute, "httpcache_cache_get_or_compute");
  RESOLVE(cache_get, "httpcache_cache_get");
  RESOLVE(cache_invalidate, "httpcache_cache_invalidate");
  RESOLVE(buf_set, "httpcache_buf_set");
  RESOLVE(buf_dispose, "httpcache_buf_dispose");
}

/** The loaded library is the version the header describes. */
static void test_dlopen_version_matches_header(void **state) {
  (void)state;
  assert_non_null(lib.version_number);
  assert_int_equal(lib.version_number(), HTTPCACHE_VERSION_NUMBER);
  assert_string_equal(lib.version_string(), HTTPCACHE_VERSION_STRING);
}

/** Status names and the last error work through resolved pointers. */
static void test_dlopen_errors_through_pointers(void **state) {
  httpcache_cache *cache = NULL;
  const httpcache_error *e;
  (void)state;
  assert_string_equal(lib.strerror_(HTTPCACHE_ENOTFOUND), "cache miss");
  assert_string_equal(lib.strerror_(-12345), "unknown error");
  /* ':' is not allowed in a namespace. */
  assert_int_equal(lib.cache_open(&cache, "memory://", "bad:namespace", NULL, NULL), HTTPCACHE_EINVALID);
  assert_null(cache);
  e = lib.error_last();
  assert_non_null(e);
  assert_int_equal(e->code, HTTPCACHE_EINVALID);
  assert_non_null(e->message);
  assert_true(strlen(e->message) > 0);
}

/* A compute callback that counts its calls and produces a binary value. */
typedef struct producer {
  int calls;
} producer;

static const char answer[] = {'f', 'o', 'r', 't', 'y', '\0', 't', 'w', 'o', '\xff'};

static int produce_answer(httpcache_buf *value, uint32_t *flags, void *payload) {
  (void)flags;
  ((producer *)payload)->calls++;
  return lib.buf_set(value, answer, sizeof answer);
}

/* Caches through get_or_compute (callback once), hits (callback not called, same bytes, TTL left),
 * invalidates, and misses again: all through dlsym'd pointers. */
static void roundtrip(const char *url) {
  static const char key[] = "dlopen:answer";
  const httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = (httpcache_outcome)0;
  producer p = {0};
  int64_t ttl_ms = -1;
  size_t deleted = 99, key_len = sizeof key - 1;
  const void *keys[1];
  keys[0] = key;

  assert_int_equal(lib.cache_open(&cache, url, test_unique_namespace("dlopen"), "UTC", NULL), HTTPCACHE_OK);
  assert_non_null(cache);

  /* A fresh namespace: miss. */
  assert_int_equal(lib.cache_get(&value, NULL, cache, key, key_len), HTTPCACHE_ENOTFOUND);
  assert_int_equal(lib.error_last()->code, HTTPCACHE_ENOTFOUND);
  assert_null(value.ptr);

  /* Computed once and stored with the policy's TTL. */
  assert_int_equal(lib.cache_get_or_compute(&value, &ttl_ms, &outcome, cache, key, key_len, &policy, produce_answer, &p),
                   HTTPCACHE_OK);
  assert_int_equal(p.calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(ttl_ms, 60000);
  assert_int_equal(value.size, sizeof answer);
  assert_memory_equal(value.ptr, answer, sizeof answer);
  assert_int_equal(value.ptr[value.size], '\0');
  lib.buf_dispose(&value);
  assert_null(value.ptr);

  /* Hit: the callback is not called, same bytes, some TTL left. */
  ttl_ms = -1;
  assert_int_equal(lib.cache_get_or_compute(&value, &ttl_ms, &outcome, cache, key, key_len, &policy, produce_answer, &p),
                   HTTPCACHE_OK);
  assert_int_equal(p.calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  assert_true(ttl_ms > 0 && ttl_ms <= 60000);
  assert_int_equal(value.size, sizeof answer);
  assert_memory_equal(value.ptr, answer, sizeof answer);
  lib.buf_dispose(&value);

  /* A plain get sees it too. */
  ttl_ms = -1;
  assert_int_equal(lib.cache_get(&value, &ttl_ms, cache, key, key_len), HTTPCACHE_OK);
  assert_true(ttl_ms > 0 && ttl_ms <= 60000);
  assert_int_equal(value.size, sizeof answer);
  assert_memory_equal(value.ptr, answer, sizeof answer);
  lib.buf_dispose(&value);
  assert_int_equal(lib.error_last()->code, HTTPCACHE_OK);

  /* Invalidated: one key deleted, then a miss, and get_or_compute computes again. */
  assert_int_equal(lib.cache_invalidate(&deleted, cache, keys, &key_len, 1), HTTPCACHE_OK);
  assert_int_equal(deleted, 1);
  assert_int_equal(lib.cache_get(&value, NULL, cache, key, key_len), HTTPCACHE_ENOTFOUND);
  assert_int_equal(lib.cache_get_or_compute(&value, NULL, &outcome, cache, key, key_len, &policy, produce_answer, &p),
                   HTTPCACHE_OK);
  assert_int_equal(p.calls, 2);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_memory_equal(value.ptr, answer, sizeof answer);
  lib.buf_dispose(&value);

  assert_int_equal(lib.cache_invalidate(&deleted, cache, keys, &key_len, 1), HTTPCACHE_OK);
  assert_int_equal(deleted, 1);
  lib.cache_free(cache);
  lib.cache_free(NULL);
}

/** memory://: store, hit, invalidate and miss through dlsym'd pointers. */
static void test_dlopen_memory_roundtrip(void **state) {
  (void)state;
  roundtrip("memory://");
}

/** Redis (the fixture's server): store, hit, invalidate and miss through dlsym'd pointers. */
static void test_dlopen_redis_roundtrip(void **state) {
  (void)state;
  roundtrip(test_redis_url());
}

/* 1 when `name` resolves through the handle to a definition inside libhttpcache itself. dlsym() on a
 * dlopen() handle also searches the library's dependencies (libhiredis, libfmt, ICU, libstdc++ when
 * they are shared), so a hit there is legitimate: what matters is where the definition lives. */
static int defined_in_library(const char *name) {
  Dl_info mine, found;
  void *ours, *sym;
  memcpy(&ours, &lib.version_number, sizeof ours);
  assert_true(dladdr(ours, &mine) != 0);
  sym = dlsym(lib.handle, name);
  if (!sym) return 0;
  assert_true(dladdr(sym, &found) != 0);
  return found.dli_fbase == mine.dli_fbase;
}

/** Only httpcache_* is exported: core C++ symbols, hiredis and fmt are not (re-)exported. */
static void test_dlopen_internal_symbols_not_exported(void **state) {
  static const char *const internal[] = {
      /* httpcache::format_key, ttl_seconds and parse_url: real core functions (nm libhttpcache_core.a) */
      "_ZN9httpcache10format_keyB5cxx11ESt17basic_string_viewIcSt11char_traitsIcEERKSt6vectorIS3_SaIS3_EE",
      "_ZN9httpcache11ttl_secondsERKNS_10ttl_policyERKNS_9time_zoneEl",
      "_ZN9httpcache9parse_urlESt17basic_string_viewIcSt11char_traitsIcEE",
      /* made-up internal names */
      "httpcache_internal_guard",
      "_ZN9httpcache4capi9set_errorEiRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
  };
  static const char *const third_party[] = {
      "redisConnect", "redisCommand", "freeReplyObject", "redisAsyncConnect",
      /* fmt::v9::vformat */
      "_ZN3fmt2v97vformatB5cxx11ENS0_17basic_string_viewIcEENS0_17basic_format_argsINS0_20basic_format_contextINS0_8appenderEcEEEE",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof internal / sizeof internal[0]; ++i) {
    /* Defined nowhere visible: not in the library, not in any dependency. */
    if (dlsym(lib.handle, internal[i]) != NULL) fail_msg("internal symbol is exported: %s", internal[i]);
  }
  for (i = 0; i < sizeof third_party / sizeof third_party[0]; ++i)
    if (defined_in_library(third_party[i])) fail_msg("libhttpcache re-exports %s", third_party[i]);
  /* The public names are, and they come from libhttpcache itself. */
  assert_true(defined_in_library("httpcache_cache_open"));
  assert_true(defined_in_library("httpcache_version_number"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dlopen_resolves_every_function),
      cmocka_unit_test(test_dlopen_version_matches_header),
      cmocka_unit_test(test_dlopen_errors_through_pointers),
      cmocka_unit_test(test_dlopen_memory_roundtrip),
      cmocka_unit_test(test_dlopen_redis_roundtrip),
      cmocka_unit_test(test_dlopen_internal_symbols_not_exported),
  };
  return cmocka_run_group_tests(tests, load_library, unload_library);
}
