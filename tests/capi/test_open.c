/* SPDX-License-Identifier: MIT
 * Opening handles: URL schemes and their options, bad URLs, zones, lazy connection, fail-open. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

static int open_url(httpcache_cache **out, const char *url) {
  return httpcache_cache_open(out, url, "t", "UTC", NULL);
}

/** NULL, "" and memory:// all give the embedded store; free(NULL) is harmless. */
static void test_open_memory_forms(void **state) {
  const char *urls[] = {NULL, "", "memory://"};
  size_t i;
  (void)state;
  for (i = 0; i < 3; ++i) {
    httpcache_cache *cache = NULL;
    assert_int_equal(open_url(&cache, urls[i]), HTTPCACHE_OK);
    assert_non_null(cache);
    assert_string_equal(httpcache_cache_timezone(cache), "UTC");
    httpcache_cache_free(cache);
  }
  httpcache_cache_free(NULL);
  assert_null(httpcache_cache_namespace(NULL));
}

/** Every documented Redis URL form parses (the handle connects lazily, so no server is needed). */
static void test_open_redis_forms(void **state) {
  const char *urls[] = {
      "redis://localhost",
      "redis://127.0.0.1:6390",
      "redis://127.0.0.1:6390/3",
      "redis://:secret@127.0.0.1:6390/0",
      "redis://alice:s%3Acret@127.0.0.1/2?connect_timeout_ms=50&command_timeout_ms=70",
      "redis://secret@localhost",
      "redis://[::1]:6390/1",
      "unix:///tmp/none.sock",
      "unix:///tmp/none.sock?db=4&command_timeout_ms=10",
      "redis+cluster://127.0.0.1:7000",
      "redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001,[::1]:7002?command_timeout_ms=30",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof urls / sizeof urls[0]; ++i) {
    httpcache_cache *cache = NULL;
    int rc = open_url(&cache, urls[i]);
    if (rc != HTTPCACHE_OK) fail_msg("%s: %s", urls[i], httpcache_error_last()->message);
    httpcache_cache_free(cache);
  }
}

/** Bad URLs and unknown schemes fail with EINVALID, a message saying why, and *out NULL. */
static void test_open_bad_urls(void **state) {
  struct {
    const char *url;
    const char *why;
  } cases[] = {
      {"redis", "://"},
      {"http://localhost", "unknown scheme 'http'"},
      {"rediss+x://a:1", "unknown scheme 'rediss+x'"},
      {"redis://a:1?ssl_ca_certs=/ca.pem", "needs a TLS URL"},
      {"rediss://a:1?ssl_cert_reqs=maybe", "ssl_cert_reqs must be required or none"},
      {"rediss://a:1?ssl_check_hostname=1", "ssl_check_hostname must be true or false"},
      {"rediss://a:1?ssl_bogus=1", "unknown query parameter 'ssl_bogus'"},
      {"rediss://a:1?ssl_ca_certs=/no/such/ca.pem", "cannot use ssl_ca_certs '/no/such/ca.pem'"},
      {"rediss://a:1?ssl_certfile=/no/such/c.pem", "ssl_certfile and ssl_keyfile go together"},
      {"redis+sentinel://a:1", "service name"},
      {"redis+sentinel://a:1/", "service name"},
      {"redis://a:1,b:2", "one host"},
      {"redis+cluster://a:1,", "no host"},
      {"redis+cluster://a:1/2", "database 0"},
      {"memory://x", "memory://"},
      {"redis://", "no host"},
      {"redis://host:0", "port"},
      {"redis://host:70000", "port"},
      {"redis://host:12ab", "port"},
      {"redis://host/x", "database"},
      {"redis://host/-1", "database"},
      {"redis://host?command_timeout_ms=0", "command_timeout_ms"},
      {"redis://host?command_timeout_ms=", "command_timeout_ms"},
      {"redis://host?bogus=1", "unknown query parameter 'bogus'"},
      {"redis://host?novalue", "no value"},
      {"redis://[::1", "IPv6"},
      {"redis://ho st", "invalid character"},
      {"redis://u:%zz@host", "percent"},
      {"unix://relative.sock", "absolute"},
      {"unix:///tmp/s.sock?db=x", "db"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    httpcache_cache *cache = (httpcache_cache *)cases; /* must be reset */
    int rc = open_url(&cache, cases[i].url);
    if (rc != HTTPCACHE_EINVALID) fail_msg("%s: expected EINVALID, got %d", cases[i].url, rc);
    assert_null(cache);
    assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
    if (!strstr(httpcache_error_last()->message, cases[i].why))
      fail_msg("%s: message '%s' lacks '%s'", cases[i].url, httpcache_error_last()->message, cases[i].why);
  }
}

/** A password never appears in an error message: not for a bad URL, nor for a refused connection. */
static void test_open_credentials_never_echoed(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(open_url(&cache, "redis://bob:hunter2@127.0.0.1:bad"), HTTPCACHE_EINVALID);
  assert_null(strstr(httpcache_error_last()->message, "hunter2"));
  /* Port 1 on loopback refuses: the connection error names the server, not the password. */
  assert_int_equal(open_url(&cache, "redis://bob:hunter2@127.0.0.1:1?connect_timeout_ms=200"), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_non_null(strstr(httpcache_error_last()->message, "127.0.0.1:1"));
  assert_non_null(strstr(httpcache_error_last()->message, "***"));
  assert_null(strstr(httpcache_error_last()->message, "hunter2"));
  httpcache_cache_free(cache);
}

/** Unknown, empty and absurd zone names are refused with the name in the message. */
static void test_open_unknown_time_zone(void **state) {
  httpcache_cache *cache = NULL;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, NULL, "t", "Mars/Olympus", NULL), HTTPCACHE_EINVALID);
  assert_null(cache);
  assert_non_null(strstr(httpcache_error_last()->message, "Mars/Olympus"));
  assert_int_equal(httpcache_cache_open(&cache, NULL, "t", "", NULL), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_open(&cache, NULL, "t", "Africa/Casablanca", NULL), HTTPCACHE_OK);
  assert_string_equal(httpcache_cache_timezone(cache), "Africa/Casablanca");
  httpcache_cache_free(cache);
}

/** NULL out is EINVALID, never a crash. */
static void test_open_null_out(void **state) {
  (void)state;
  assert_int_equal(httpcache_cache_open(NULL, NULL, NULL, NULL, NULL), HTTPCACHE_EINVALID);
}

static int compute_hello(httpcache_buf *value, uint32_t *flags, void *payload) {
  (void)flags;
  ++*(int *)payload;
  return httpcache_buf_set(value, "hello", 5);
}

/** With Redis down, get reports EBACKEND and get_or_compute still serves the computed value. */
static void test_open_server_down_fails_open(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_HIT;
  int calls = 0;
  const char *keys[] = {"k"};
  size_t lens[] = {1};
  (void)state;
  assert_int_equal(open_url(&cache, "redis://127.0.0.1:1?connect_timeout_ms=200"), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &policy, compute_hello,
                                                  &calls),
                   HTTPCACHE_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_string_equal(value.ptr, "hello");
  /* The call succeeded, and the last error says why the backend was not used. */
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EBACKEND);
  if (!strstr(httpcache_error_last()->message, "127.0.0.1:1")) fail_msg("%s", httpcache_error_last()->message);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "v", 1, &policy), HTTPCACHE_EBACKEND);
  assert_int_equal(httpcache_cache_invalidate(NULL, cache, (const void *const *)keys, lens, 1), HTTPCACHE_EBACKEND);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/** db selects a database (seen by a second handle). The URL overriding the options struct is
 *  test_open_url_options_override_struct's. */
static void test_open_db_selects_database(void **state) {
  char url3[600], url4[600];
  httpcache_cache *db3 = NULL, *db4 = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  const char *ns = test_unique_namespace("db");
  (void)state;
  test_redis_url_with("/3", "command_timeout_ms=2000", url3, sizeof url3);
  test_redis_url_with("/4", "", url4, sizeof url4);
  assert_int_equal(httpcache_cache_open(&db3, url3, ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_open(&db4, url4, ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, db3, "k", 1, "three", 5, &policy), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, db4, "k", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&value, NULL, db3, "k", 1), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "three");
  httpcache_buf_dispose(&value);
  httpcache_cache_free(db3);
  httpcache_cache_free(db4);
}

/* ---- Timeouts and defaults, against loopback peers that never answer ---- */

/* Connects to the listener until a connect no longer completes (its accept queue is full: with
 * tcp_abort_on_overflow=0, the default, Linux drops the SYN and the client keeps retrying), so
 * the next connect hangs in SYN-SENT. The fds go to fds[] (closed by the caller). */
static int fill_backlog(int port, int *fds, int cap) {
  struct sockaddr_in a;
  int n;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  for (n = 0; n < cap; ++n) {
    struct pollfd p;
    int fd = socket(AF_INET, SOCK_STREAM, 0), err = 0;
    socklen_t elen = sizeof err;
    assert_true(fd >= 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fds[n] = fd;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) continue;
    assert_int_equal(errno, EINPROGRESS);
    p.fd = fd;
    p.events = POLLOUT;
    p.revents = 0;
    if (poll(&p, 1, 300) == 0) return n + 1; /* this one hangs: the queue is full */
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen), 0);
    assert_int_equal(err, 0);
  }
  fail_msg("a loopback listener with backlog 0 never stopped completing connects (%d)", cap);
  return cap;
}

static void close_all(int *fds, int n) {
  int i;
  for (i = 0; i < n; ++i) close(fds[i]);
}

/* Opens a handle on url (opts may be NULL), runs one get, returns its duration in ms; the status
 * goes to *rc. */
static int64_t timed_get(const char *url, const httpcache_options *opts, int *rc) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  int64_t start;
  assert_int_equal(httpcache_cache_open(&cache, url, "t", NULL, opts), HTTPCACHE_OK);
  start = test_now_ms();
  *rc = httpcache_cache_get(&value, NULL, cache, "k", 1);
  start = test_now_ms() - start;
  httpcache_cache_free(cache);
  return start;
}

/** The URL's query options override the options struct (both given, different values), and the
 *  struct's apply when the URL names none: a peer that accepts but never answers a command. */
static void test_open_url_options_override_struct(void **state) {
  char url[200];
  int port, rc;
  int fd = test_silent_listener(64, &port);
  int64_t ms;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  (void)state;
  opts.connect_timeout_ms = 3000;
  opts.command_timeout_ms = 3000;
  snprintf(url, sizeof url, "redis://127.0.0.1:%d?command_timeout_ms=200", port);
  ms = timed_get(url, &opts, &rc);
  assert_int_equal(rc, HTTPCACHE_ETIMEOUT);
  if (ms < 150 || ms > 1500) fail_msg("URL command_timeout_ms=200 over struct 3000: took %lld ms", (long long)ms);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  opts.command_timeout_ms = 300;
  ms = timed_get(url, &opts, &rc);
  assert_int_equal(rc, HTTPCACHE_ETIMEOUT);
  if (ms < 250 || ms > 1500) fail_msg("struct command_timeout_ms=300: took %lld ms", (long long)ms);
  close(fd);
}

/** connect_timeout_ms bounds a connect that never completes (a full accept queue), from the
 *  struct or from the URL (which wins), and get_or_compute fails open within it. */
static void test_open_connect_timeout_full_backlog(void **state) {
  char url[200];
  int port, rc, fds[64], n, calls = 0;
  int fd = test_silent_listener(0, &port);
  int64_t ms;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_HIT;
  (void)state;
  n = fill_backlog(port, fds, 64);
  opts.connect_timeout_ms = 300;
  opts.command_timeout_ms = 5000;
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  ms = timed_get(url, &opts, &rc);
  assert_true(rc == HTTPCACHE_ETIMEOUT || rc == HTTPCACHE_EBACKEND);
  if (ms < 250 || ms > 1500) fail_msg("connect_timeout_ms=300: took %lld ms", (long long)ms);

  opts.connect_timeout_ms = 3000;
  snprintf(url, sizeof url, "redis://127.0.0.1:%d?connect_timeout_ms=200", port);
  ms = timed_get(url, &opts, &rc);
  assert_true(rc == HTTPCACHE_ETIMEOUT || rc == HTTPCACHE_EBACKEND);
  if (ms < 150 || ms > 1500) fail_msg("URL connect_timeout_ms=200 over struct 3000: took %lld ms", (long long)ms);

  assert_int_equal(httpcache_cache_open(&cache, url, "t", NULL, &opts), HTTPCACHE_OK);
  ms = test_now_ms();
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &policy, compute_hello,
                                                  &calls),
                   HTTPCACHE_OK);
  ms = test_now_ms() - ms;
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_int_equal(calls, 1);
  assert_string_equal(value.ptr, "hello");
  if (ms > 1500) fail_msg("get_or_compute failing open took %lld ms", (long long)ms);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
  close_all(fds, n);
  close(fd);
}

/** The documented default timeouts (1000 ms each) apply with NULL options, with
 *  HTTPCACHE_OPTIONS_INIT and with httpcache_options_init() (zeros meaning "the default"). */
static void test_open_default_timeouts(void **state) {
  char url[200];
  int port, rc, fds[64], n, i;
  int silent = test_silent_listener(64, &port), full, full_port;
  int64_t ms;
  httpcache_options init_opts, zero_opts = HTTPCACHE_OPTIONS_INIT;
  const httpcache_options *forms[3];
  (void)state;
  memset(&init_opts, 0xff, sizeof init_opts);
  assert_int_equal(httpcache_options_init(&init_opts, HTTPCACHE_OPTIONS_VERSION), HTTPCACHE_OK);
  assert_int_equal(init_opts.version, HTTPCACHE_OPTIONS_VERSION);
  assert_int_equal(init_opts.command_timeout_ms, 0); /* zero: "the default" */
  assert_int_equal(init_opts.max_value_bytes, 0);
  forms[0] = NULL;
  forms[1] = &zero_opts;
  forms[2] = &init_opts;
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  for (i = 0; i < 3; ++i) {
    ms = timed_get(url, forms[i], &rc);
    assert_int_equal(rc, HTTPCACHE_ETIMEOUT);
    if (ms < 900 || ms > 1900) fail_msg("default command timeout (form %d): took %lld ms", i, (long long)ms);
  }
  full = test_silent_listener(0, &full_port);
  n = fill_backlog(full_port, fds, 64);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", full_port);
  ms = timed_get(url, NULL, &rc);
  assert_true(rc == HTTPCACHE_ETIMEOUT || rc == HTTPCACHE_EBACKEND);
  if (ms < 900 || ms > 1900) fail_msg("default connect timeout: took %lld ms", (long long)ms);
  close_all(fds, n);
  close(full);
  close(silent);
}

/** The default max_value_bytes is 8 MiB: exactly 8 MiB is stored, one byte more is refused. */
static void test_open_default_max_value_bytes(void **state) {
  const size_t limit = (size_t)8 << 20;
  char *big = calloc(1, limit + 1);
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_options zero_opts = HTTPCACHE_OPTIONS_INIT;
  const char *urls[2];
  size_t u;
  (void)state;
  assert_non_null(big);
  urls[0] = "memory://";
  urls[1] = test_redis_url();
  for (u = 0; u < 2; ++u) {
    assert_int_equal(httpcache_cache_open(&cache, urls[u], test_unique_namespace("max"), NULL, u ? &zero_opts : NULL),
                     HTTPCACHE_OK);
    assert_int_equal(httpcache_cache_set(NULL, cache, "over", 4, big, limit + 1, &policy), HTTPCACHE_EINVALID);
    assert_non_null(strstr(httpcache_error_last()->message, "max_value_bytes"));
    assert_int_equal(httpcache_cache_set(NULL, cache, "at", 2, big, limit, &policy), HTTPCACHE_OK);
    assert_int_equal(httpcache_cache_get(&value, NULL, cache, "at", 2), HTTPCACHE_OK);
    assert_int_equal(value.size, limit);
    assert_int_equal(httpcache_cache_get(&value, NULL, cache, "over", 4), HTTPCACHE_ENOTFOUND);
    httpcache_buf_dispose(&value);
    httpcache_cache_free(cache);
  }
  free(big);
}

/** The default breaker: 3 consecutive failures open it (calls are then skipped, fast), and after
 *  its 500 ms cool-down one call probes the backend again. */
static void test_open_default_breaker(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  int i;
  (void)state;
  assert_int_equal(open_url(&cache, "redis://127.0.0.1:1"), HTTPCACHE_OK); /* refused at once */
  for (i = 0; i < 2; ++i) assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  assert_int_equal(s.breaker_open, 0);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  assert_int_equal(s.breaker_open, 1);
  assert_int_equal(s.errors, 3);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  assert_int_equal(s.breaker_skips, 1); /* within the cool-down: skipped */
  test_sleep_ms(700);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  assert_int_equal(s.errors, 4); /* after it: one probe reached the (still refusing) backend */
  assert_int_equal(s.breaker_skips, 1);
  httpcache_cache_free(cache);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_memory_forms),
      cmocka_unit_test(test_open_redis_forms),
      cmocka_unit_test(test_open_bad_urls),
      cmocka_unit_test(test_open_credentials_never_echoed),
      cmocka_unit_test(test_open_unknown_time_zone),
      cmocka_unit_test(test_open_null_out),
      cmocka_unit_test(test_open_server_down_fails_open),
      cmocka_unit_test(test_open_db_selects_database),
      cmocka_unit_test(test_open_url_options_override_struct),
      cmocka_unit_test(test_open_connect_timeout_full_backlog),
      cmocka_unit_test(test_open_default_timeouts),
      cmocka_unit_test(test_open_default_max_value_bytes),
      cmocka_unit_test(test_open_default_breaker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
