/* SPDX-License-Identifier: MIT
 * Status codes, the thread-local last error, buffers, options and version queries. */
#include <string.h>

#include "httpcache.h"
#include "support.h"

/** Every code has its own description, and unknown codes get a generic one. */
static void test_errors_strerror_names_every_code(void **state) {
  int codes[] = {HTTPCACHE_OK, HTTPCACHE_ERROR, HTTPCACHE_ENOTFOUND, HTTPCACHE_EINVALID, HTTPCACHE_ENOMEM,
                 HTTPCACHE_EBUFS, HTTPCACHE_EUSER, HTTPCACHE_EBACKEND, HTTPCACHE_ETIMEOUT,
                 HTTPCACHE_EVERSION, HTTPCACHE_ECANCELED};
  size_t i, j;
  (void)state;
  for (i = 0; i < sizeof codes / sizeof codes[0]; ++i) {
    assert_non_null(httpcache_strerror(codes[i]));
    assert_string_not_equal(httpcache_strerror(codes[i]), "unknown error");
    for (j = 0; j < i; ++j) assert_string_not_equal(httpcache_strerror(codes[i]), httpcache_strerror(codes[j]));
  }
  assert_string_equal(httpcache_strerror(-12345), "unknown error");
  assert_string_equal(httpcache_strerror(HTTPCACHE_ENOTFOUND), "cache miss");
}

/** The last error is never NULL, carries the failing code and message, and is cleared by a success. */
static void test_errors_last_error_follows_calls(void **state) {
  const httpcache_error *e;
  httpcache_options opts;
  (void)state;
  e = httpcache_error_last();
  assert_non_null(e);
  assert_non_null(e->message);
  assert_int_equal(httpcache_options_init(NULL, HTTPCACHE_OPTIONS_VERSION), HTTPCACHE_EINVALID);
  e = httpcache_error_last();
  assert_int_equal(e->code, HTTPCACHE_EINVALID);
  assert_non_null(strstr(e->message, "opts"));
  assert_int_equal(httpcache_options_init(&opts, HTTPCACHE_OPTIONS_VERSION), HTTPCACHE_OK);
  e = httpcache_error_last();
  assert_int_equal(e->code, HTTPCACHE_OK);
  assert_string_equal(e->message, "no error");
}

/** An options version this library does not know is refused, by init and by open. */
static void test_errors_options_version_mismatch(void **state) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache = (httpcache_cache *)&opts; /* must be reset to NULL */
  const httpcache_error *e;
  (void)state;
  assert_int_equal(httpcache_options_init(&opts, 999), HTTPCACHE_EVERSION);
  e = httpcache_error_last();
  assert_int_equal(e->code, HTTPCACHE_EVERSION);
  assert_non_null(strstr(e->message, "unsupported httpcache_options version 999"));
  /* A refused init leaves the caller's struct alone: still the macro's, which open accepts. */
  assert_int_equal(opts.version, HTTPCACHE_OPTIONS_VERSION);
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "version", NULL, &opts), HTTPCACHE_OK);
  assert_non_null(cache);
  httpcache_cache_free(cache);
  cache = (httpcache_cache *)&opts;
  opts.version = 999;
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "version", NULL, &opts), HTTPCACHE_EVERSION);
  assert_null(cache);
  e = httpcache_error_last();
  assert_int_equal(e->code, HTTPCACHE_EVERSION);
  assert_non_null(strstr(e->message, "unsupported httpcache_options version 999"));
}

/** Buffers: set copies and NUL-terminates, dispose frees and resets, NULL is a no-op. */
static void test_errors_buffers(void **state) {
  httpcache_buf buf = HTTPCACHE_BUF_INIT;
  (void)state;
  httpcache_buf_dispose(NULL);
  httpcache_buf_dispose(&buf);
  assert_int_equal(httpcache_buf_set(&buf, "a\0b", 3), HTTPCACHE_OK);
  assert_int_equal(buf.size, 3);
  assert_memory_equal(buf.ptr, "a\0b", 3);
  assert_int_equal(buf.ptr[3], '\0');
  assert_int_equal(httpcache_buf_set(&buf, "", 0), HTTPCACHE_OK);
  assert_int_equal(buf.size, 0);
  assert_int_equal(httpcache_buf_set(NULL, "x", 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_buf_set(&buf, NULL, 1), HTTPCACHE_EINVALID);
  httpcache_buf_dispose(&buf);
  assert_null(buf.ptr);
  assert_int_equal(buf.size, 0);
}

/** The loaded library reports the version the header was compiled against. */
static void test_errors_version(void **state) {
  (void)state;
  assert_int_equal(httpcache_version_number(), HTTPCACHE_VERSION_NUMBER);
  assert_string_equal(httpcache_version_string(), HTTPCACHE_VERSION_STRING);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors_strerror_names_every_code),
      cmocka_unit_test(test_errors_last_error_follows_calls),
      cmocka_unit_test(test_errors_options_version_mismatch),
      cmocka_unit_test(test_errors_buffers),
      cmocka_unit_test(test_errors_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
