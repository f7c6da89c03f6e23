/* SPDX-License-Identifier: MIT
 * TLS against the fixtures' TLS-only redis-servers (tests/fixtures/redis_server.sh start DIR tls
 * and mtls; certificates from fixtures/tls_certs.sh: the server's names are redis.test and
 * 127.0.0.1, never localhost). Verification is on by default; a refused handshake is an outage
 * (fail open, with the reason in the message); the options struct carries the same settings as
 * the URL's query. The rest of the C suite also runs over these fixtures (tests/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

static char tls_dir[512], mtls_dir[512];

static const char *file_in(const char *env, const char *name, char *out, size_t cap) {
  const char *dir = getenv(env);
  FILE *f;
  char path[1024];
  if (!dir) fail_msg("%s is not set: run through ctest", env);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "r");
  if (!f) fail_msg("cannot read %s", path);
  if (!fgets(out, (int)cap, f)) out[0] = '\0';
  fclose(f);
  out[strcspn(out, "\n")] = '\0';
  return out;
}

static int setup(void **state) {
  (void)state;
  snprintf(tls_dir, sizeof tls_dir, "%s/tls", getenv("HTTPCACHE_TEST_REDIS_TLS_DIR"));
  snprintf(mtls_dir, sizeof mtls_dir, "%s/tls", getenv("HTTPCACHE_TEST_REDIS_MTLS_DIR"));
  return 0;
}

static int compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  ++*(int *)payload;
  return httpcache_buf_set(out, "computed", 8);
}

/* One set and get through `cache`: must work. */
static void roundtrip(httpcache_cache *cache) {
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "secret-v", 8, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_OK);
  assert_memory_equal(value.ptr, "secret-v", 8);
  httpcache_buf_dispose(&value);
}

/* The handshake is refused: a get fails with EBACKEND naming `why` (or `or_why`: a server that
 * refuses a client certificate after its handshake may reset the connection before its alert is
 * read), get_or_compute fails open (computes, no error), and the outage is counted. */
static void refused_either(httpcache_cache *cache, const char *why, const char *or_why) {
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  int calls = 0;
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  if (!strstr(httpcache_error_last()->message, why) && !strstr(httpcache_error_last()->message, or_why))
    fail_msg("message '%s' lacks '%s'", httpcache_error_last()->message, why);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute, compute, &calls),
                   HTTPCACHE_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_memory_equal(value.ptr, "computed", 8);
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  assert_true(s.errors >= 1);
  httpcache_buf_dispose(&value);
}

static void refused(httpcache_cache *cache, const char *why) { refused_either(cache, why, why); }

static httpcache_cache *open_with(const char *url, const httpcache_options *opts) {
  httpcache_cache *cache = NULL;
  int rc = httpcache_cache_open(&cache, url, test_unique_namespace("tls"), NULL, opts);
  if (rc != HTTPCACHE_OK) fail_msg("%s: %s", url, httpcache_error_last()->message);
  return cache;
}

/** The CA given in the options struct instead of the URL; and through a hashed directory. */
static void test_tls_options_struct(void **state) {
  char port[32], url[256], ca[600], capath[600];
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache;
  (void)state;
  file_in("HTTPCACHE_TEST_REDIS_TLS_DIR", "port", port, sizeof port);
  snprintf(url, sizeof url, "rediss://127.0.0.1:%s", port);
  snprintf(ca, sizeof ca, "%s/ca.crt", tls_dir);
  snprintf(capath, sizeof capath, "%s/capath", tls_dir);
  opts.ssl_ca_certs = ca;
  cache = open_with(url, &opts);
  roundtrip(cache);
  httpcache_cache_free(cache);
  opts.ssl_ca_certs = NULL;
  opts.ssl_ca_path = capath;
  cache = open_with(url, &opts);
  roundtrip(cache);
  httpcache_cache_free(cache);
}

/** A CA that did not sign the server's certificate, and the system's CAs (none did): refused. */
static void test_tls_wrong_ca_refused(void **state) {
  char port[32], url[256], other[600];
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache;
  (void)state;
  file_in("HTTPCACHE_TEST_REDIS_TLS_DIR", "port", port, sizeof port);
  snprintf(url, sizeof url, "rediss://127.0.0.1:%s?connect_timeout_ms=500", port);
  snprintf(other, sizeof other, "%s/other-ca.crt", tls_dir);
  opts.ssl_ca_certs = other;
  cache = open_with(url, &opts);
  refused(cache, "certificate verify failed");
  httpcache_cache_free(cache);
  cache = open_with(url, NULL); /* the system's store */
  refused(cache, "certificate verify failed");
  httpcache_cache_free(cache);
  /* ssl_cert_reqs=none: no verification at all (for test servers only) */
  opts.ssl_ca_certs = NULL;
  opts.ssl_cert_reqs = HTTPCACHE_SSL_CERT_NONE;
  cache = open_with(url, &opts);
  roundtrip(cache);
  httpcache_cache_free(cache);
}

/** The certificate names redis.test and 127.0.0.1, not localhost: a host name mismatch is
 *  refused, unless the check is off or the expected name is given (also sent as SNI). */
static void test_tls_host_name(void **state) {
  char port[32], url[700];
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache;
  (void)state;
  file_in("HTTPCACHE_TEST_REDIS_TLS_DIR", "port", port, sizeof port);
  snprintf(url, sizeof url, "rediss://localhost:%s?ssl_ca_certs=%s/ca.crt&connect_timeout_ms=500", port, tls_dir);
  cache = open_with(url, NULL);
  refused(cache, "hostname mismatch");
  httpcache_cache_free(cache);
  opts.ssl_check_hostname = HTTPCACHE_SSL_NO_CHECK_HOSTNAME;
  cache = open_with(url, &opts);
  roundtrip(cache);
  httpcache_cache_free(cache);
  opts.ssl_check_hostname = HTTPCACHE_SSL_CHECK_HOSTNAME;
  opts.ssl_server_hostname = "redis.test";
  cache = open_with(url, &opts);
  roundtrip(cache);
  httpcache_cache_free(cache);
  /* The URL's query beats the struct: the struct says "no check", the URL says "check". */
  snprintf(url, sizeof url, "rediss://localhost:%s?ssl_ca_certs=%s/ca.crt&ssl_check_hostname=true&connect_timeout_ms=500",
           port, tls_dir);
  opts.ssl_server_hostname = NULL;
  opts.ssl_check_hostname = HTTPCACHE_SSL_NO_CHECK_HOSTNAME;
  cache = open_with(url, &opts);
  refused(cache, "hostname mismatch");
  httpcache_cache_free(cache);
}

/** A server that requires client certificates: refused without one or with one of another CA;
 *  works with the fixture's client certificate, from the URL or from the struct. */
static void test_tls_client_certificates(void **state) {
  char port[32], url[700], mtls_url[1200], cert[600], key[600];
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache;
  (void)state;
  file_in("HTTPCACHE_TEST_REDIS_MTLS_DIR", "port", port, sizeof port);
  snprintf(url, sizeof url, "rediss://127.0.0.1:%s?ssl_ca_certs=%s/ca.crt&connect_timeout_ms=500", port, mtls_dir);
  cache = open_with(url, NULL);
  refused_either(cache, "certificate required", "reset by peer");
  httpcache_cache_free(cache);
  snprintf(cert, sizeof cert, "%s/other-client.crt", mtls_dir);
  snprintf(key, sizeof key, "%s/other-client.key", mtls_dir);
  opts.ssl_certfile = cert;
  opts.ssl_keyfile = key;
  cache = open_with(url, &opts);
  refused_either(cache, "unknown ca", "reset by peer");
  httpcache_cache_free(cache);
  snprintf(cert, sizeof cert, "%s/client.crt", mtls_dir);
  snprintf(key, sizeof key, "%s/client.key", mtls_dir);
  cache = open_with(url, &opts);
  roundtrip(cache);
  httpcache_cache_free(cache);
  cache = open_with(file_in("HTTPCACHE_TEST_REDIS_MTLS_DIR", "url", mtls_url, sizeof mtls_url), NULL);
  roundtrip(cache);
  httpcache_cache_free(cache);
}

/** Unusable settings fail at open with EINVALID naming the setting; version 1 options still open. */
static void test_tls_bad_settings(void **state) {
  char port[32], url[256], other_key[600], cert[600];
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_options v1;
  httpcache_cache *cache = NULL;
  (void)state;
  file_in("HTTPCACHE_TEST_REDIS_TLS_DIR", "port", port, sizeof port);
  snprintf(url, sizeof url, "rediss://127.0.0.1:%s", port);
  opts.ssl_ca_certs = "/no/such/ca.pem";
  assert_int_equal(httpcache_cache_open(&cache, url, "t", NULL, &opts), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "ssl_ca_certs '/no/such/ca.pem'"));
  opts.ssl_ca_certs = NULL;
  snprintf(cert, sizeof cert, "%s/client.crt", tls_dir);
  snprintf(other_key, sizeof other_key, "%s/other-client.key", tls_dir);
  opts.ssl_certfile = cert;
  opts.ssl_keyfile = other_key;
  assert_int_equal(httpcache_cache_open(&cache, url, "t", NULL, &opts), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "ssl_keyfile"));
  opts.ssl_certfile = opts.ssl_keyfile = NULL;
  opts.ssl_cert_reqs = 7;
  assert_int_equal(httpcache_cache_open(&cache, url, "t", NULL, &opts), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "ssl_cert_reqs"));
  assert_null(cache);
  /* A program built against version 1 of the struct: shorter, and still accepted. */
  assert_int_equal(httpcache_options_init(&v1, 1), HTTPCACHE_OK);
  assert_int_equal(v1.version, 1);
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "t", NULL, &v1), HTTPCACHE_OK);
  httpcache_cache_free(cache);
  assert_int_equal(httpcache_options_init(&v1, HTTPCACHE_OPTIONS_VERSION + 1), HTTPCACHE_EVERSION);
}

static void on_async_get(int status, const void *value, size_t len, int64_t ttl_ms, void *payload) {
  (void)value;
  (void)len;
  (void)ttl_ms;
  *(int *)payload = status;
}

/** A peer that takes the connection but never answers the handshake: the blocking call and the
 *  non-blocking one end with ETIMEOUT at the connect timeout, not later, and fail open. */
static void test_tls_silent_peer_times_out(void **state) {
  char url[200];
  int port, fd = test_silent_listener(64, &port), status = 1, calls = 0;
  httpcache_cache *cache;
  httpcache_async *ctx = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  test_loop loop = TEST_LOOP_INIT;
  int64_t start, ms;
  (void)state;
  snprintf(url, sizeof url, "rediss://127.0.0.1:%d?connect_timeout_ms=300&command_timeout_ms=300", port);
  cache = open_with(url, NULL);
  start = test_now_ms();
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_ETIMEOUT);
  ms = test_now_ms() - start;
  if (ms < 250 || ms > 1500) fail_msg("blocking handshake with a silent peer: %lld ms", (long long)ms);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute, compute, &calls),
                   HTTPCACHE_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(httpcache_async_open(&ctx, cache, test_loop_watch, &loop), HTTPCACHE_OK);
  start = test_now_ms();
  assert_int_equal(httpcache_async_get(ctx, "k", 1, on_async_get, &status), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 3000), 0);
  ms = test_now_ms() - start;
  assert_int_equal(status, HTTPCACHE_ETIMEOUT);
  /* the request's deadline: connect + command timeout */
  if (ms < 500 || ms > 2000) fail_msg("non-blocking handshake with a silent peer: %lld ms", (long long)ms);
  httpcache_async_free(ctx);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
  close(fd);
}

#ifndef _WIN32 /* it drives the cluster with the host's redis-cli, which a Windows program cannot run */
/* redis-cli over TLS to a node of the TLS cluster; the first line of its output into out. */
static void cluster_cli(const char *cluster_dir, int port, const char *args, char *out, size_t cap) {
  char cmd[2048], line[256] = "";
  FILE *p;
  snprintf(cmd, sizeof cmd, "redis-cli --tls --cacert '%s/tls/ca.crt' -h 127.0.0.1 -p %d %s", cluster_dir, port, args);
  p = popen(cmd, "r");
  assert_non_null(p);
  if (!fgets(line, sizeof line, p)) line[0] = '\0';
  while (fgetc(p) != EOF) {
  }
  assert_int_equal(pclose(p), 0);
  line[strcspn(line, "\n")] = '\0';
  if (out) snprintf(out, cap, "%s", line);
}

/** A TLS cluster whose slot moves to another master after the handle learned the map: the
 *  blocking path follows MOVED to the new owner (nodes named by IP, verified by IP). */
static void test_tls_cluster_follows_moved(void **state) {
  const char *cdir = getenv("HTTPCACHE_TEST_CLUSTER_TLS_DIR");
  char url[1024], path[1024], full_key[256], args[512], slot[32], owner_line[64], from_id[64], to_id[64];
  int ports[3], n = 0, from = -1, to = -1, i;
  httpcache_cache *cache = NULL;
  httpcache_buf full = HTTPCACHE_BUF_INIT, value = HTTPCACHE_BUF_INIT;
  FILE *f;
  (void)state;
  if (!cdir) fail_msg("HTTPCACHE_TEST_CLUSTER_TLS_DIR is not set: run through ctest");
  snprintf(path, sizeof path, "%s/ports", cdir);
  f = fopen(path, "r");
  assert_non_null(f);
  while (n < 3 && fscanf(f, "%d", &ports[n]) == 1) ++n;
  fclose(f);
  assert_int_equal(n, 3);
  snprintf(path, sizeof path, "%s", cdir);
  file_in("HTTPCACHE_TEST_CLUSTER_TLS_DIR", "url", url, sizeof url);
  assert_int_equal(httpcache_cache_open(&cache, url, test_unique_namespace("moved"), NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "before-move", 11, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_full_key(&full, cache, "k", 1), HTTPCACHE_OK);
  snprintf(full_key, sizeof full_key, "%s", full.ptr);
  snprintf(args, sizeof args, "CLUSTER KEYSLOT '%s'", full_key);
  cluster_cli(cdir, ports[0], args, slot, sizeof slot);
  /* The owner: the master that has the key. */
  for (i = 0; i < 3 && from < 0; ++i) {
    char found[64];
    snprintf(args, sizeof args, "CLUSTER COUNTKEYSINSLOT %s", slot);
    cluster_cli(cdir, ports[i], args, found, sizeof found);
    if (atoi(found) > 0) from = i;
  }
  assert_true(from >= 0);
  to = (from + 1) % 3;
  cluster_cli(cdir, ports[from], "CLUSTER MYID", from_id, sizeof from_id);
  cluster_cli(cdir, ports[to], "CLUSTER MYID", to_id, sizeof to_id);
  snprintf(args, sizeof args, "CLUSTER SETSLOT %s IMPORTING %s", slot, from_id);
  cluster_cli(cdir, ports[to], args, NULL, 0);
  snprintf(args, sizeof args, "CLUSTER SETSLOT %s MIGRATING %s", slot, to_id);
  cluster_cli(cdir, ports[from], args, NULL, 0);
  snprintf(args, sizeof args, "MIGRATE 127.0.0.1 %d '' 0 5000 KEYS '%s'", ports[to], full_key);
  cluster_cli(cdir, ports[from], args, owner_line, sizeof owner_line);
  assert_string_equal(owner_line, "OK");
  for (i = 0; i < 3; ++i) {
    snprintf(args, sizeof args, "CLUSTER SETSLOT %s NODE %s", slot, to_id);
    cluster_cli(cdir, ports[i], args, NULL, 0);
  }
  /* The handle still maps the slot to the old owner: MOVED, followed. */
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_OK);
  assert_memory_equal(value.ptr, "before-move", 11);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "after-move", 10, &one_minute), HTTPCACHE_OK);
  snprintf(args, sizeof args, "GET '%s'", full_key);
  cluster_cli(cdir, ports[to], args, owner_line, sizeof owner_line);
  assert_string_equal(owner_line, "after-move");
  httpcache_buf_dispose(&full);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tls_options_struct),     cmocka_unit_test(test_tls_wrong_ca_refused),
      cmocka_unit_test(test_tls_host_name),          cmocka_unit_test(test_tls_client_certificates),
      cmocka_unit_test(test_tls_bad_settings),
#ifndef _WIN32
      cmocka_unit_test(test_tls_cluster_follows_moved),
#endif
      cmocka_unit_test(test_tls_silent_peer_times_out),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
