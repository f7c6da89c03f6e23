/* SPDX-License-Identifier: MIT
 * The HTTP storage rules of the C API (httpcache_http_judge, _cache_control, _date_parse): the
 * same cases the Python package's tests judge through it, from a C program. */
#include <stdio.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

#define NOW 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

static httpcache_slice s(const char *text) {
  httpcache_slice out;
  out.data = text;
  out.size = strlen(text);
  return out;
}

struct rule_case {
  int status;
  const char *headers[4]; /* "name: value", NULL-terminated */
  unsigned flags;
  int storable;
  long long lifetime;
  const char *reason; /* a substring of the reason, or NULL when storable */
};

static const struct rule_case cases[] = {
    {200, {NULL}, 0, 1, -1, NULL},
    {203, {"Content-Type: text/html", NULL}, 0, 1, -1, NULL},
    {206, {NULL}, 0, 0, -1, "status 206"},
    {500, {NULL}, 0, 0, -1, "status 500"},
    {304, {NULL}, 0, 0, -1, "status 304"},
    {200, {"Set-Cookie: sid=1", NULL}, HTTPCACHE_HTTP_PER_USER, 0, -1, "cookie"},
    {200, {"cache-control: no-store", NULL}, 0, 0, -1, "no-store"},
    {200, {"Cache-Control: max-age=60, No-Cache", NULL}, 0, 0, -1, "no-cache"},
    {200, {"Cache-Control: private", NULL}, 0, 0, -1, "private under a key shared"},
    {200, {"Cache-Control: private, max-age=30", NULL}, HTTPCACHE_HTTP_PER_USER, 1, 30, NULL},
    {200, {"Cache-Control: max-age=120", NULL}, 0, 1, 120, NULL},
    {200, {"Cache-Control: max-age=120, s-maxage=40", NULL}, 0, 1, 40, NULL},
    {200, {"Cache-Control: public", "Cache-Control: max-age=7", NULL}, 0, 1, 7, NULL},
    {200, {"Cache-Control: max-age=0", NULL}, 0, 0, -1, "0 seconds"},
    {200, {"Cache-Control: max-age=soon", NULL}, 0, 0, -1, "0 seconds"},
    {200, {"Cache-Control: max-age=99999999999999", NULL}, 0, 1, 2147483648LL, NULL},
    {200, {"Cache-Control: no-cache=\"a, b\", max-age=5", NULL}, 0, 0, -1, "no-cache"},
    {200, {"Cache-Control: x=\"unclosed, max-age=5", NULL}, 0, 0, -1, "does not parse"},
    {200, {"Expires: Sun, 06 Nov 1994 08:50:37 GMT", NULL}, 0, 1, 60, NULL},
    {200, {"Expires: Sun, 06 Nov 1994 08:48:37 GMT", NULL}, 0, 0, -1, "0 seconds"},
    {200, {"Expires: 0", NULL}, 0, 0, -1, "0 seconds"},
    {200, {"Expires: Sun, 06 Nov 1994 08:50:37 GMT", "Cache-Control: max-age=9", NULL}, 0, 1, 9, NULL},
    {200, {"Vary: Accept-Encoding", NULL}, HTTPCACHE_HTTP_PER_USER, 0, -1, "Vary: Accept-Encoding"},
    {200, {"Vary: Cookie", NULL}, 0, 0, -1, "under a key shared by users"},
    {200, {"Vary: *", NULL}, 0, 0, -1, "Vary: *"},
    {200, {"Vary: Authorization, cookie", NULL}, HTTPCACHE_HTTP_PER_USER, 1, -1, NULL},
};

/** Each case of the table gets the documented verdict. */
static void test_http_judge_table(void **state) {
  size_t i, n;
  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    httpcache_header hs[4];
    httpcache_http_verdict v;
    char names[4][64];
    const struct rule_case *c = &cases[i];
    for (n = 0; c->headers[n]; ++n) {
      const char *colon = strchr(c->headers[n], ':');
      size_t len = (size_t)(colon - c->headers[n]);
      memcpy(names[n], c->headers[n], len);
      names[n][len] = '\0';
      hs[n].name = s(names[n]);
      hs[n].value = s(colon + 2);
    }
    assert_int_equal(httpcache_http_judge(&v, c->status, hs, n, c->flags, NOW), HTTPCACHE_OK);
    if (v.storable != c->storable || (c->storable && v.lifetime_s != c->lifetime) ||
        (c->reason && !strstr(v.reason, c->reason)) || (!c->reason && v.reason[0])) {
      fprintf(stderr, "case %zu: storable %d lifetime %lld reason '%s'\n", i, v.storable, (long long)v.lifetime_s,
              v.reason);
      fail();
    }
  }
}

/** Bad arguments are refused with a message, never a crash. */
static void test_http_judge_refuses_bad_arguments(void **state) {
  httpcache_http_verdict v;
  httpcache_header h;
  (void)state;
  assert_int_equal(httpcache_http_judge(NULL, 200, NULL, 0, 0, NOW), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_http_judge(&v, 200, NULL, 1, 0, NOW), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_http_judge(&v, 200, NULL, 0, 0x80, NOW), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "unknown flags"));
  h.name.data = NULL;
  h.name.size = 3;
  h.value = s("x");
  assert_int_equal(httpcache_http_judge(&v, 200, &h, 1, 0, NOW), HTTPCACHE_EINVALID);
}

static void expect_control(int64_t max_age, unsigned flags, const char *handler, const char *expected) {
  httpcache_buf out = HTTPCACHE_BUF_INIT;
  assert_int_equal(httpcache_http_cache_control(&out, max_age, flags, handler, handler ? strlen(handler) : 0),
                   HTTPCACHE_OK);
  if (out.size != strlen(expected) || memcmp(out.ptr, expected, out.size) != 0) {
    fprintf(stderr, "handler '%s' max-age %lld: got '%.*s', expected '%s'\n", handler ? handler : "(none)",
            (long long)max_age, (int)out.size, (const char *)out.ptr, expected);
    fail();
  }
  httpcache_buf_dispose(&out);
}

/** The Cache-Control of a stored response: the handler's directives, lowered max-ages, private. */
static void test_http_cache_control(void **state) {
  (void)state;
  expect_control(60, 0, NULL, "max-age=60");
  expect_control(60, HTTPCACHE_HTTP_PER_USER, NULL, "private, max-age=60");
  expect_control(30, 0, "public, max-age=600, must-revalidate", "public, max-age=30, must-revalidate");
  expect_control(30, 0, "s-maxage=10, stale-if-error=60", "s-maxage=10, stale-if-error=60");
  expect_control(30, HTTPCACHE_HTTP_PER_USER, "public, max-age=600", "private, max-age=30");
  expect_control(30, HTTPCACHE_HTTP_PER_USER, "private, max-age=5", "private, max-age=5");
  expect_control(30, 0, "no-transform", "no-transform, max-age=30");
  expect_control(30, 0, "max-age=bad", "max-age=0");
  expect_control(-5, 0, NULL, "max-age=0");
}

/** The three HTTP-date forms, and what is not one. */
static void test_http_date_parse(void **state) {
  int64_t t = 0;
  (void)state;
  assert_int_equal(httpcache_http_date_parse(&t, "Sun, 06 Nov 1994 08:49:37 GMT", 29), HTTPCACHE_OK);
  assert_int_equal(t, NOW);
  assert_int_equal(httpcache_http_date_parse(&t, "Sunday, 06-Nov-94 08:49:37 GMT", 30), HTTPCACHE_OK);
  assert_int_equal(t, NOW);
  assert_int_equal(httpcache_http_date_parse(&t, "Sun Nov  6 08:49:37 1994", 24), HTTPCACHE_OK);
  assert_int_equal(t, NOW);
  assert_int_equal(httpcache_http_date_parse(&t, "Thu, 01 Jan 1970 00:00:00 GMT", 29), HTTPCACHE_OK);
  assert_int_equal(t, 0);
  assert_int_equal(httpcache_http_date_parse(&t, "Tue, 29 Feb 2028 12:00:00 GMT", 29), HTTPCACHE_OK);
  assert_int_equal(t, 1835438400);
  assert_int_equal(httpcache_http_date_parse(&t, "Mon, 29 Feb 2027 12:00:00 GMT", 29), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_http_date_parse(&t, "Sun, 06 Nov 1994 08:49:37 UTC", 29), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_http_date_parse(&t, "0", 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_http_date_parse(&t, "", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_http_date_parse(NULL, "x", 1), HTTPCACHE_EINVALID);
}

static httpcache_response *v2_record(const char *etag, const char *last_modified, int64_t stored_at) {
  httpcache_header hs[2];
  size_t n = 0;
  httpcache_buf rec = HTTPCACHE_BUF_INIT;
  httpcache_response *r = NULL;
  if (etag) {
    hs[n].name = s("ETag");
    hs[n++].value = s(etag);
  }
  if (last_modified) {
    hs[n].name = s("Last-Modified");
    hs[n++].value = s(last_modified);
  }
  assert_int_equal(httpcache_response_encode_v2(&rec, 200, "text/plain", 10, hs, n, "hello", 5, stored_at, NULL, 0),
                   HTTPCACHE_OK);
  assert_int_equal(httpcache_response_decode(&r, rec.ptr, rec.size), HTTPCACHE_OK);
  httpcache_buf_dispose(&rec);
  return r;
}

static int not_modified(const httpcache_response *r, const char *name, const char *value) {
  httpcache_header h;
  int out = -1;
  h.name = s(name);
  h.value = s(value);
  assert_int_equal(httpcache_http_not_modified(&out, r, &h, 1), HTTPCACHE_OK);
  return out;
}

/** Version 2 records: stored-at, Vary values, and the strong ETag added from the body's SHA-256. */
static void test_http_record_v2(void **state) {
  httpcache_header vary, h;
  httpcache_buf rec = HTTPCACHE_BUF_INIT, tag = HTTPCACHE_BUF_INIT;
  httpcache_response *r = NULL;
  (void)state;
  vary.name = s("accept-language");
  vary.value = s("fr");
  assert_int_equal(httpcache_response_encode_v2(&rec, 201, "text/plain", 10, NULL, 0, "hello", 5, NOW * 1000LL + 250, &vary, 1),
                   HTTPCACHE_OK);
  assert_memory_equal(rec.ptr, "HTTPCACHE-RESPONSE 2\n201 1 784111777250 1\n", 42);
  assert_int_equal(httpcache_response_decode(&r, rec.ptr, rec.size), HTTPCACHE_OK);
  assert_int_equal(httpcache_response_version(r), 2);
  assert_int_equal(httpcache_response_stored_at(r), NOW * 1000LL + 250);
  assert_int_equal(httpcache_response_vary_count(r), 1);
  assert_int_equal(httpcache_response_vary(&h, r, 0), HTTPCACHE_OK);
  assert_memory_equal(h.value.data, "fr", 2);
  assert_int_equal(httpcache_response_header(&h, r, 0), HTTPCACHE_OK);
  assert_memory_equal(h.name.data, "etag", 4);
  /* SHA-256("hello") = 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 */
  assert_int_equal(h.value.size, 34);
  assert_memory_equal(h.value.data, "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"", 34);
  assert_int_equal(httpcache_http_strong_etag(&tag, "hello", 5), HTTPCACHE_OK);
  assert_memory_equal(tag.ptr, h.value.data, 34);
  assert_memory_equal(httpcache_response_body(r).data, "hello", 5);
  httpcache_response_free(r);
  httpcache_buf_dispose(&rec);
  httpcache_buf_dispose(&tag);
  /* A version-1 record still reads, with no stored-at time. */
  assert_int_equal(httpcache_response_encode(&rec, 200, "", 0, NULL, 0, "x", 1), HTTPCACHE_OK);
  assert_int_equal(httpcache_response_decode(&r, rec.ptr, rec.size), HTTPCACHE_OK);
  assert_int_equal(httpcache_response_version(r), 1);
  assert_int_equal(httpcache_response_stored_at(r), 0);
  httpcache_response_free(r);
  httpcache_buf_dispose(&rec);
  assert_int_equal(httpcache_response_encode_v2(&rec, 200, "", 0, NULL, 0, "x", 1, -1, NULL, 0), HTTPCACHE_EINVALID);
}

/** If-None-Match (weak comparison, lists, *) and If-Modified-Since against a stored response. */
static void test_http_not_modified(void **state) {
  httpcache_response *r = v2_record("\"v1\"", "Sun, 06 Nov 1994 08:49:37 GMT", (NOW + 100) * 1000LL);
  httpcache_response *bare = v2_record(NULL, NULL, NOW * 1000LL + 999);
  httpcache_header two[2];
  int out = -1;
  (void)state;
  assert_int_equal(not_modified(r, "If-None-Match", "\"v1\""), 1);
  assert_int_equal(not_modified(r, "if-none-match", "W/\"v1\""), 1);
  assert_int_equal(not_modified(r, "If-None-Match", "\"a\", \"v1\""), 1);
  assert_int_equal(not_modified(r, "If-None-Match", "*"), 1);
  assert_int_equal(not_modified(r, "If-None-Match", "\"v2\""), 0);
  assert_int_equal(not_modified(r, "If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"), 1);
  assert_int_equal(not_modified(r, "If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"), 0);
  assert_int_equal(not_modified(r, "If-Modified-Since", "yesterday"), 0);
  /* Without Last-Modified, the time it was stored. */
  assert_int_equal(not_modified(bare, "If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"), 1);
  assert_int_equal(not_modified(bare, "If-Modified-Since", "Sun, 06 Nov 1994 08:00:00 GMT"), 0);
  /* If-None-Match, when present, decides alone. */
  two[0].name = s("If-None-Match");
  two[0].value = s("\"nope\"");
  two[1].name = s("If-Modified-Since");
  two[1].value = s("Sun, 06 Nov 1994 08:49:37 GMT");
  assert_int_equal(httpcache_http_not_modified(&out, r, two, 2), HTTPCACHE_OK);
  assert_int_equal(out, 0);
  assert_int_equal(httpcache_http_not_modified(&out, r, NULL, 0), HTTPCACHE_OK);
  assert_int_equal(out, 0);
  assert_int_equal(httpcache_http_not_modified(NULL, r, NULL, 0), HTTPCACHE_EINVALID);
  /* The same from the validators alone. */
  two[0].value = s("W/\"v1\"");
  assert_int_equal(httpcache_http_not_modified_by(&out, "\"v1\"", 4, NULL, 0, 0, two, 1), HTTPCACHE_OK);
  assert_int_equal(out, 1);
  assert_int_equal(httpcache_http_not_modified_by(&out, NULL, 0, NULL, 0, (NOW + 1) * 1000LL, two + 1, 1),
                   HTTPCACHE_OK);
  assert_int_equal(out, 0); /* stored after the If-Modified-Since date */
  assert_int_equal(httpcache_http_not_modified_by(&out, NULL, 0, "Sun, 06 Nov 1994 08:49:37 GMT", 29, 0, two + 1, 1),
                   HTTPCACHE_OK);
  assert_int_equal(out, 1);
  assert_int_equal(httpcache_http_not_modified_by(NULL, NULL, 0, NULL, 0, 0, NULL, 0), HTTPCACHE_EINVALID);
  httpcache_response_free(r);
  httpcache_response_free(bare);
}

static unsigned request_flags(const char *name, const char *value) {
  httpcache_header h;
  unsigned out = 99;
  h.name = s(name);
  h.value = s(value);
  assert_int_equal(httpcache_http_request_flags(&out, &h, 1), HTTPCACHE_OK);
  return out;
}

/** A request's own Cache-Control: no-store, no-cache / max-age=0, Pragma without Cache-Control. */
static void test_http_request_flags(void **state) {
  unsigned out = 99;
  httpcache_header both[2];
  (void)state;
  assert_int_equal(request_flags("Cache-Control", "no-store"), HTTPCACHE_HTTP_REQUEST_NO_STORE);
  assert_int_equal(request_flags("cache-control", "No-Cache"), HTTPCACHE_HTTP_REQUEST_NO_CACHE);
  assert_int_equal(request_flags("Cache-Control", "max-age=0"), HTTPCACHE_HTTP_REQUEST_NO_CACHE);
  assert_int_equal(request_flags("Cache-Control", "max-age=5"), 0);
  assert_int_equal(request_flags("Cache-Control", "no-cache, no-store"),
                   HTTPCACHE_HTTP_REQUEST_NO_CACHE | HTTPCACHE_HTTP_REQUEST_NO_STORE);
  assert_int_equal(request_flags("Pragma", "no-cache"), HTTPCACHE_HTTP_REQUEST_NO_CACHE);
  assert_int_equal(request_flags("Cache-Control", "x=\"unclosed"), 0);
  both[0].name = s("Pragma");
  both[0].value = s("no-cache");
  both[1].name = s("Cache-Control");
  both[1].value = s("max-age=60");
  assert_int_equal(httpcache_http_request_flags(&out, both, 2), HTTPCACHE_OK);
  assert_int_equal(out, 0); /* Cache-Control present: Pragma is ignored */
  assert_int_equal(httpcache_http_request_flags(&out, NULL, 0), HTTPCACHE_OK);
  assert_int_equal(out, 0);
  assert_int_equal(httpcache_http_request_flags(NULL, NULL, 0), HTTPCACHE_EINVALID);
  both[0].value.data = NULL; /* a NULL value with a size: refused, never read */
  assert_int_equal(httpcache_http_request_flags(&out, both, 1), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "header value 0 is NULL"));
}

/* Variants: the key part from the request's values, and the verdict that accepts their Vary. */
static void test_http_variants(void **state) {
  (void)state;
  const httpcache_slice varied[] = {{"X-Tenant", 8}, {"accept-language", 15}, {"Accept-Language", 15}};
  const httpcache_header two[] = {{{"Accept-Language", 15}, {"en", 2}}, {{"accept-language", 15}, {" fr ", 4}}};
  const httpcache_header dotted[] = {{{"accept-language", 15}, {"en.vfr", 6}}};
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  assert_int_equal(httpcache_http_variant(&v, two, 2, varied, 3), HTTPCACHE_OK);
  assert_int_equal(v.size, strlen(".ven%2C%20fr.n"));
  assert_memory_equal(v.ptr, ".ven%2C%20fr.n", v.size); /* sorted names, joined values, "n": absent */
  assert_int_equal(httpcache_http_variant(&v, dotted, 1, varied, 3), HTTPCACHE_OK);
  assert_memory_equal(v.ptr, ".ven%2Evfr.n", v.size); /* a value cannot forge a separator */
  assert_int_equal(httpcache_http_variant(&v, NULL, 0, varied, 3), HTTPCACHE_OK);
  assert_memory_equal(v.ptr, ".n.n", v.size);
  const httpcache_slice bad[] = {{"not a token", 11}};
  assert_int_equal(httpcache_http_variant(&v, two, 2, bad, 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_http_variant(&v, two, 2, NULL, 1), HTTPCACHE_EINVALID);
  httpcache_buf_dispose(&v);

  const httpcache_header vary[] = {{{"Vary", 4}, {"Accept-Language", 15}}};
  const httpcache_header star[] = {{{"Vary", 4}, {"*", 1}}};
  httpcache_http_verdict out;
  assert_int_equal(httpcache_http_judge(&out, 200, vary, 1, 0, 0), HTTPCACHE_OK);
  assert_int_equal(out.storable, 0);
  assert_int_equal(httpcache_http_judge_varied(&out, 200, vary, 1, 0, 0, varied, 3), HTTPCACHE_OK);
  assert_int_equal(out.storable, 1);
  assert_int_equal(httpcache_http_judge_varied(&out, 200, star, 1, 0, 0, varied, 3), HTTPCACHE_OK);
  assert_int_equal(out.storable, 0);
  const httpcache_slice any[] = {{"*", 1}}; /* found by review: "*" is a token, but varies on everything */
  assert_int_equal(httpcache_http_judge_varied(&out, 200, star, 1, 0, 0, any, 1), HTTPCACHE_OK);
  assert_int_equal(out.storable, 0);
  assert_int_equal(httpcache_http_variant(&v, two, 2, any, 1), HTTPCACHE_EINVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_judge_table),
      cmocka_unit_test(test_http_judge_refuses_bad_arguments),
      cmocka_unit_test(test_http_cache_control),
      cmocka_unit_test(test_http_date_parse),
      cmocka_unit_test(test_http_record_v2),
      cmocka_unit_test(test_http_not_modified),
      cmocka_unit_test(test_http_request_flags),
      cmocka_unit_test(test_http_variants),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
