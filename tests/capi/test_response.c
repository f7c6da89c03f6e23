/* SPDX-License-Identifier: MIT
 * The HTTP response record: round trips, the documented layout, and refusal of bad input. */
#include <string.h>

#include "httpcache.h"
#include "support.h"

static httpcache_slice s(const char *text) {
  httpcache_slice out;
  out.data = text;
  out.size = strlen(text);
  return out;
}

/** A record round-trips status, media type, headers in order, and a binary body. */
static void test_response_round_trip(void **state) {
  httpcache_header headers[2];
  httpcache_buf record = HTTPCACHE_BUF_INIT;
  httpcache_response *r = NULL;
  httpcache_header h;
  httpcache_slice body, media;
  const char bin[] = "{\"a\":1}\0\xff";
  (void)state;
  headers[0].name = s("x-request-id");
  headers[0].value = s("abc");
  headers[1].name = s("content-language");
  headers[1].value = s("fr");
  assert_int_equal(httpcache_response_encode(&record, 201, "application/json", 16, headers, 2, bin, sizeof bin - 1),
                   HTTPCACHE_OK);
  assert_int_equal(httpcache_response_decode(&r, record.ptr, record.size), HTTPCACHE_OK);
  assert_int_equal(httpcache_response_status(r), 201);
  media = httpcache_response_media_type(r);
  assert_int_equal(media.size, 16);
  assert_memory_equal(media.data, "application/json", 16);
  assert_int_equal(httpcache_response_header_count(r), 2);
  assert_int_equal(httpcache_response_header(&h, r, 1), HTTPCACHE_OK);
  assert_int_equal(h.name.size, 16);
  assert_memory_equal(h.name.data, "content-language", 16);
  assert_memory_equal(h.value.data, "fr", 2);
  assert_int_equal(httpcache_response_header(&h, r, 2), HTTPCACHE_EINVALID);
  body = httpcache_response_body(r);
  assert_int_equal(body.size, sizeof bin - 1);
  assert_memory_equal(body.data, bin, sizeof bin - 1);
  httpcache_response_free(r);
  httpcache_response_free(NULL);
  httpcache_buf_dispose(&record);
}

/** The bytes are exactly the documented layout, so other languages can read them. */
static void test_response_layout(void **state) {
  httpcache_header h;
  httpcache_buf record = HTTPCACHE_BUF_INIT;
  const char expect[] = "HTTPCACHE-RESPONSE 1\n200 1\ntext/plain\nx-a: b\nhello";
  (void)state;
  h.name = s("x-a");
  h.value = s("b");
  assert_int_equal(httpcache_response_encode(&record, 200, "text/plain", 10, &h, 1, "hello", 5), 0);
  assert_int_equal(record.size, sizeof expect - 1);
  assert_memory_equal(record.ptr, expect, sizeof expect - 1);
  httpcache_buf_dispose(&record);
}

/** Fields the format cannot carry are refused when encoding. */
static void test_response_encode_refuses_bad_fields(void **state) {
  httpcache_header h;
  httpcache_buf record = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(httpcache_response_encode(&record, 99, "", 0, NULL, 0, "", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_response_encode(&record, 1000, "", 0, NULL, 0, "", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_response_encode(&record, 200, "a\nb", 3, NULL, 0, "", 0), HTTPCACHE_EINVALID);
  h.name = s("x-a");
  h.value = s("evil\r\nset-cookie: x");
  assert_int_equal(httpcache_response_encode(&record, 200, "", 0, &h, 1, "", 0), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "header value"));
  h.name = s("bad name");
  h.value = s("v");
  assert_int_equal(httpcache_response_encode(&record, 200, "", 0, &h, 1, "", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_response_encode(NULL, 200, "", 0, NULL, 0, "", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_response_encode(&record, 200, "", 0, NULL, 1, "", 0), HTTPCACHE_EINVALID);
  assert_null(record.ptr);
}

/** Anything that is not a well-formed record is EINVALID (a miss), never a crash. */
static void test_response_decode_refuses_garbage(void **state) {
  const char *bad[] = {
      "",
      "[1, 2, 3]",
      "HTTPCACHE-RESPONSE 2\n200 0\n\n",
      "HTTPCACHE-RESPONSE 1\n",
      "HTTPCACHE-RESPONSE 1\n200\n\n",
      "HTTPCACHE-RESPONSE 1\n20x 0\n\n",
      "HTTPCACHE-RESPONSE 1\n200 1\ntext/plain\n",
      "HTTPCACHE-RESPONSE 1\n200 1\ntext/plain\nno-colon\n",
      "HTTPCACHE-RESPONSE 1\n200 99999\n\n",
      "HTTPCACHE-RESPONSE 1\n-200 0\n\n",
  };
  size_t i;
  httpcache_response *r = (httpcache_response *)bad;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    int rc = httpcache_response_decode(&r, bad[i], strlen(bad[i]));
    if (rc != HTTPCACHE_EINVALID) fail_msg("case %zu decoded (rc %d)", i, rc);
    assert_null(r);
    assert_non_null(strstr(httpcache_error_last()->message, "not a valid response record"));
  }
  assert_int_equal(httpcache_response_decode(&r, NULL, 3), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_response_decode(NULL, "x", 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_response_status(NULL), 0);
  assert_int_equal(httpcache_response_header_count(NULL), 0);
}

/** An empty body and media type are valid. */
static void test_response_empty_parts(void **state) {
  httpcache_buf record = HTTPCACHE_BUF_INIT;
  httpcache_response *r = NULL;
  (void)state;
  assert_int_equal(httpcache_response_encode(&record, 204, NULL, 0, NULL, 0, NULL, 0), 0);
  assert_int_equal(httpcache_response_decode(&r, record.ptr, record.size), 0);
  assert_int_equal(httpcache_response_status(r), 204);
  assert_int_equal(httpcache_response_body(r).size, 0);
  assert_int_equal(httpcache_response_media_type(r).size, 0);
  httpcache_response_free(r);
  httpcache_buf_dispose(&record);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_response_round_trip),
      cmocka_unit_test(test_response_layout),
      cmocka_unit_test(test_response_encode_refuses_bad_fields),
      cmocka_unit_test(test_response_decode_refuses_garbage),
      cmocka_unit_test(test_response_empty_parts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
