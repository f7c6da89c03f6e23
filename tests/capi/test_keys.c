/* SPDX-License-Identifier: MIT
 * Key templates, binary-safe keys, limits and namespaces. */
#include <string.h>

#include "httpcache.h"
#include "support.h"

static int format1(httpcache_buf *out, const char *tmpl, const char *arg, size_t arg_len) {
  httpcache_slice s;
  s.data = arg;
  s.size = arg_len;
  return httpcache_key_format(out, tmpl, strlen(tmpl), &s, 1);
}

/** `{}` takes the argument's bytes, as in the seed's `b.logged_in.{}` -> `b.logged_in.112358`. */
static void test_keys_template_fills_field(void **state) {
  httpcache_buf key = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(format1(&key, "b.logged_in.{}", "112358", 6), HTTPCACHE_OK);
  assert_string_equal(key.ptr, "b.logged_in.112358");
  assert_int_equal(key.size, strlen("b.logged_in.112358"));
  httpcache_buf_dispose(&key);
}

/** Several fields, escaped braces, and arguments with NUL and non-UTF-8 bytes (percent-encoded). */
static void test_keys_template_binary_and_escapes(void **state) {
  httpcache_buf key = HTTPCACHE_BUF_INIT;
  httpcache_slice args[2];
  const char expect[] = "{u}:a%00b/%FF%FE";
  (void)state;
  args[0].data = "a\0b";
  args[0].size = 3;
  args[1].data = "\xff\xfe";
  args[1].size = 2;
  assert_int_equal(httpcache_key_format(&key, "{{u}}:{}/{}", 11, args, 2), HTTPCACHE_OK);
  assert_int_equal(key.size, sizeof expect - 1);
  assert_memory_equal(key.ptr, expect, sizeof expect - 1);
  httpcache_buf_dispose(&key);
}

/** Fewer or more arguments than fields is an error: never a key shared by all users. */
static void test_keys_field_count_must_match(void **state) {
  httpcache_buf key = HTTPCACHE_BUF_INIT;
  httpcache_slice args[2] = {{"1", 1}, {"2", 1}};
  (void)state;
  assert_int_equal(httpcache_key_format(&key, "user.{}", 7, NULL, 0), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "1 field(s) but 0 argument(s)"));
  assert_int_equal(httpcache_key_format(&key, "user.{}", 7, args, 2), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_key_format(&key, "static", 6, args, 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_key_format(&key, "static", 6, NULL, 0), HTTPCACHE_OK);
  assert_string_equal(key.ptr, "static");
  httpcache_buf_dispose(&key);
}

/** Malformed templates, empty and over-long results and NULL pointers are refused with EINVALID. */
static void test_keys_bad_templates(void **state) {
  httpcache_buf key = HTTPCACHE_BUF_INIT;
  static char big[HTTPCACHE_MAX_KEY_BYTES + 2];
  (void)state;
  assert_int_equal(format1(&key, "a.{", "x", 1), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "template"));
  assert_int_equal(format1(&key, "a.{:d}", "x", 1), HTTPCACHE_EINVALID);
  assert_int_equal(format1(&key, "a.}", "x", 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_key_format(&key, "", 0, NULL, 0), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "empty"));
  assert_int_equal(format1(&key, "{}", "", 0), HTTPCACHE_EINVALID);
  memset(big, 'k', sizeof big - 1);
  assert_int_equal(httpcache_key_format(&key, big, HTTPCACHE_MAX_KEY_BYTES, NULL, 0), HTTPCACHE_OK);
  assert_int_equal(key.size, HTTPCACHE_MAX_KEY_BYTES);
  assert_int_equal(httpcache_key_format(&key, big, HTTPCACHE_MAX_KEY_BYTES + 1, NULL, 0), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "limit"));
  assert_int_equal(httpcache_key_format(NULL, "a", 1, NULL, 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_key_format(&key, NULL, 1, NULL, 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_key_format(&key, "{}", 2, NULL, 1), HTTPCACHE_EINVALID);
  httpcache_buf_dispose(&key);
}

/** Only plain fields: a spec could give different values one key (`{:.2}` makes `alice1` and
 * `alice2` one key, `{:.0}` everyone one, a width merges "x" and "  x"); numbered fields work. */
static void test_keys_field_specs_refused(void **state) {
  static const char *const refused[] = {"a.{:.2}", "a.{:.0}", "a.{:>5}", "a.{:2000000000}", "a.{0.__class__}",
                                        "a.{!r}", "a.{name}", "a.{0:}", "a.{ }"};
  httpcache_buf key = HTTPCACHE_BUF_INIT;
  httpcache_slice two[2] = {{"x", 1}, {"y", 1}};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    assert_int_equal(format1(&key, refused[i], "alice1", 6), HTTPCACHE_EINVALID);
    assert_non_null(strstr(httpcache_error_last()->message, "template"));
  }
  assert_int_equal(httpcache_key_format(&key, "{1}.{0}", 7, two, 2), HTTPCACHE_OK);
  assert_string_equal(key.ptr, "y.x");
  assert_int_equal(httpcache_key_format(&key, "{}.{1}", 6, two, 2), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_key_format(&key, "{0}.{5}", 7, two, 2), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_key_format(&key, "{0}.{0}", 7, two, 1), HTTPCACHE_EINVALID);
  httpcache_buf_dispose(&key);
}

/** Several fields stay injective: every argument is used, and fields are separated by a byte no
 * encoded value contains (`{}{}` gave "abc" for ("a","bc") and ("ab","c"); `{}-{}` gave "a-b-c"
 * for ("a-b","c") and ("a","b-c"); `x{1}{1}` ignored its first argument). */
static void test_keys_several_fields_stay_injective(void **state) {
  static const char *const refused[] = {"{}{}", "{}-{}", "{}_{}", "{}a{}", "{}%{}", "x{0}{1}"};
  httpcache_buf key = HTTPCACHE_BUF_INIT;
  httpcache_slice two[2] = {{"a-b", 3}, {"c", 1}};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    assert_int_equal(httpcache_key_format(&key, refused[i], strlen(refused[i]), two, 2), HTTPCACHE_EINVALID);
    assert_non_null(strstr(httpcache_error_last()->message, "separator"));
  }
  assert_int_equal(httpcache_key_format(&key, "x{1}.{1}", 8, two, 2), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "never uses argument 0"));
  assert_int_equal(httpcache_key_format(&key, "{}.{}", 5, two, 2), HTTPCACHE_OK);
  assert_string_equal(key.ptr, "a-b.c");
  assert_int_equal(httpcache_key_format(&key, "{}a.{}", 6, two, 2), HTTPCACHE_OK);
  assert_string_equal(key.ptr, "a-ba.c");
  assert_int_equal(httpcache_key_format(&key, "{}}}{}", 6, two, 2), HTTPCACHE_OK);
  assert_string_equal(key.ptr, "a-b}c");
  httpcache_buf_dispose(&key);
}

/** A value cannot steer a key into another template's (issue 13's repro: the user named
 * `alice:summary` on `orders:{}` must not read `orders:{}:summary` of alice), nor be empty. */
static void test_keys_values_are_encoded_injectively(void **state) {
  httpcache_buf a = HTTPCACHE_BUF_INIT, b = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(format1(&a, "orders:{}", "alice:summary", 13), HTTPCACHE_OK);
  assert_int_equal(format1(&b, "orders:{}:summary", "alice", 5), HTTPCACHE_OK);
  assert_string_equal(a.ptr, "orders:alice%3Asummary");
  assert_string_equal(b.ptr, "orders:alice:summary");
  assert_int_equal(format1(&a, "a.{}", "b.c", 3), HTTPCACHE_OK);
  assert_string_equal(a.ptr, "a.b%2Ec");
  assert_int_equal(format1(&a, "a.{}", "50%", 3), HTTPCACHE_OK);
  assert_string_equal(a.ptr, "a.50%25");
  assert_int_equal(format1(&a, "a.{}", "{}", 2), HTTPCACHE_OK);
  assert_string_equal(a.ptr, "a.%7B%7D");
  assert_int_equal(format1(&a, "u.{}", "Az09_-", 6), HTTPCACHE_OK);
  assert_string_equal(a.ptr, "u.Az09_-");
  assert_int_equal(format1(&a, "a.{}", "", 0), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "empty"));
  /* Three bytes per byte: a value may fill at most a third of the key. */
  {
    static char big[HTTPCACHE_MAX_KEY_BYTES];
    memset(big, '.', sizeof big);
    assert_int_equal(format1(&a, "{}", big, HTTPCACHE_MAX_KEY_BYTES / 3), HTTPCACHE_OK);
    assert_int_equal(a.size, HTTPCACHE_MAX_KEY_BYTES - HTTPCACHE_MAX_KEY_BYTES % 3);
    assert_int_equal(format1(&a, "{}", big, HTTPCACHE_MAX_KEY_BYTES / 3 + 1), HTTPCACHE_EINVALID);
    assert_non_null(strstr(httpcache_error_last()->message, "limit"));
  }
  httpcache_buf_dispose(&a);
  httpcache_buf_dispose(&b);
}

/** The backend key is `namespace:key`; keys are checked the same way everywhere. */
static void test_keys_full_key_layout(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf full = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "test_namespace", NULL, NULL), HTTPCACHE_OK);
  assert_string_equal(httpcache_cache_namespace(cache), "test_namespace");
  assert_int_equal(httpcache_cache_full_key(&full, cache, "b.home", 6), HTTPCACHE_OK);
  assert_string_equal(full.ptr, "test_namespace:b.home");
  assert_int_equal(httpcache_cache_full_key(&full, cache, "a:b\0c", 5), HTTPCACHE_OK);
  assert_int_equal(full.size, 20);
  assert_memory_equal(full.ptr, "test_namespace:a:b\0c", 20);
  assert_int_equal(httpcache_cache_full_key(&full, cache, "", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_full_key(&full, cache, NULL, 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_full_key(&full, cache, "x", HTTPCACHE_MAX_KEY_BYTES + 1), HTTPCACHE_EINVALID);
  httpcache_buf_dispose(&full);
  httpcache_cache_free(cache);
}

/** Namespaces that could collide with another's keys (':'), empty or over-long ones are refused. */
static void test_keys_namespace_rules(void **state) {
  httpcache_cache *cache = NULL;
  char long_ns[HTTPCACHE_MAX_NAMESPACE_BYTES + 2];
  const char *bad[] = {"", "a:b", "with space", "brace{x}", "nl\n", "\xc3\xa9t\xc3\xa9"};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    assert_int_equal(httpcache_cache_open(&cache, NULL, bad[i], NULL, NULL), HTTPCACHE_EINVALID);
    assert_null(cache);
    assert_non_null(strstr(httpcache_error_last()->message, "namespace"));
  }
  memset(long_ns, 'n', sizeof long_ns - 1);
  long_ns[sizeof long_ns - 1] = '\0';
  assert_int_equal(httpcache_cache_open(&cache, NULL, long_ns, NULL, NULL), HTTPCACHE_EINVALID);
  long_ns[HTTPCACHE_MAX_NAMESPACE_BYTES] = '\0';
  assert_int_equal(httpcache_cache_open(&cache, NULL, long_ns, NULL, NULL), HTTPCACHE_OK);
  httpcache_cache_free(cache);
  assert_int_equal(httpcache_cache_open(&cache, NULL, NULL, NULL, NULL), HTTPCACHE_OK);
  assert_string_equal(httpcache_cache_namespace(cache), "httpcache");
  httpcache_cache_free(cache);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_template_fills_field),
      cmocka_unit_test(test_keys_template_binary_and_escapes),
      cmocka_unit_test(test_keys_field_count_must_match),
      cmocka_unit_test(test_keys_bad_templates),
      cmocka_unit_test(test_keys_field_specs_refused),
      cmocka_unit_test(test_keys_values_are_encoded_injectively),
      cmocka_unit_test(test_keys_several_fields_stay_injective),
      cmocka_unit_test(test_keys_full_key_layout),
      cmocka_unit_test(test_keys_namespace_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
