/* SPDX-License-Identifier: MIT
 * Redis Sentinel against the fixture's 1 master, 1 replica and 3 sentinels
 * (tests/fixtures/redis_sentinel.sh): the master is found through the sentinels, and a SIGKILLed
 * master is followed to the one the sentinels promote while threads keep calling, with zero
 * failed calls; also with one sentinel down. Also over TLS (rediss+sentinel://, its own fixture). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

static const char *dir(void) {
  const char *d = getenv("HTTPCACHE_TEST_SENTINEL_DIR");
  if (!d) fail_msg("HTTPCACHE_TEST_SENTINEL_DIR is not set: run through ctest");
  return d;
}

static void first_line(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot read %s", path);
  if (!fgets(out, (int)cap, f)) out[0] = '\0';
  fclose(f);
  out[strcspn(out, "\n")] = '\0';
}

static const char *fixture_url(const char *d, char *out, size_t cap) {
  char path[1024];
  snprintf(path, sizeof path, "%s/url", d);
  first_line(path, out, cap);
  return out;
}

/* Runs the fixture script with `args`; returns its first output line in out (if any). */
static void fixture(const char *args, char *out, size_t cap) {
  char cmd[2048], line[256] = "";
  FILE *p;
  snprintf(cmd, sizeof cmd, "%s %s", HTTPCACHE_SENTINEL_SCRIPT, args);
  p = popen(cmd, "r");
  assert_non_null(p);
  if (!fgets(line, sizeof line, p)) line[0] = '\0';
  while (fgetc(p) != EOF) {
  }
  if (pclose(p) != 0) fail_msg("%s failed", cmd);
  line[strcspn(line, "\n")] = '\0';
  if (out) snprintf(out, cap, "%s", line);
}

/* GET key on the master the sentinels name now (the first live sentinel asked), through
 * redis-cli: an independent client. */
static void get_on_master(const char *d, const char *key, char *out, size_t cap) {
  char cmd[2048];
  FILE *p;
  snprintf(cmd, sizeof cmd,
           "for s in $(cat '%s/sentinel_ports'); do "
           "m=$(redis-cli -p \"$s\" SENTINEL get-master-addr-by-name mymaster 2>/dev/null | tail -n 1); "
           "[ -n \"$m\" ] && break; done; redis-cli -p \"$m\" GET '%s'",
           d, key);
  p = popen(cmd, "r");
  assert_non_null(p);
  if (!fgets(out, (int)cap, p)) out[0] = '\0';
  while (fgetc(p) != EOF) {
  }
  pclose(p);
  out[strcspn(out, "\n")] = '\0';
}

/** Through the sentinels to the master: what we store is on the master another client asks. */
static void test_sentinel_finds_master(void **state) {
  char url[512], seen[128];
  httpcache_cache *cache = NULL;
  httpcache_buf full = HTTPCACHE_BUF_INIT, value = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, fixture_url(dir(), url, sizeof url), test_unique_namespace("sen"), NULL, NULL),
                   HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "on-master", 9, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_OK);
  assert_memory_equal(value.ptr, "on-master", 9);
  assert_int_equal(httpcache_cache_full_key(&full, cache, "k", 1), HTTPCACHE_OK);
  get_on_master(dir(), full.ptr, seen, sizeof seen);
  assert_string_equal(seen, "on-master");
  httpcache_buf_dispose(&full);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

typedef struct {
  httpcache_cache *cache;
  int id;
  volatile int stop;
  long calls, wrong, failed;
} worker;

static int compute_key(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  return httpcache_buf_set(out, (const char *)payload, strlen((const char *)payload));
}

/* get_or_compute of rotating keys (a value is its key's name): a call fails if it returns an
 * error or a wrong value; an outage only makes it uncached. */
static void *work(void *arg) {
  worker *w = arg;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  char key[64];
  while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
    size_t len;
    snprintf(key, sizeof key, "w%d-%ld", w->id, w->calls % 50);
    len = strlen(key);
    ++w->calls;
    if (httpcache_cache_get_or_compute(&value, NULL, &outcome, w->cache, key, len, &one_minute, compute_key, key) !=
        HTTPCACHE_OK)
      ++w->failed;
    else if (value.size != len || memcmp(value.ptr, key, len) != 0)
      ++w->wrong;
    test_sleep_ms(1);
  }
  httpcache_buf_dispose(&value);
  return NULL;
}

/* Kills the master under load and measures how long until a store lands on the new master. */
static void failover_under_load(const char *label) {
  char url[512], old_port[32], probe_value[64], seen[128];
  httpcache_cache *cache = NULL;
  httpcache_buf full = HTTPCACHE_BUF_INIT;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  worker w[3];
  pthread_t tids[3];
  int64_t killed, landed = -1;
  int i, n;
  opts.connect_timeout_ms = 200;
  opts.command_timeout_ms = 300;
  assert_int_equal(httpcache_cache_open(&cache, fixture_url(dir(), url, sizeof url), test_unique_namespace("fail"), NULL, &opts),
                   HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_full_key(&full, cache, "probe", 5), HTTPCACHE_OK);
  for (i = 0; i < 3; ++i) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].cache = cache;
    w[i].id = i;
    assert_int_equal(pthread_create(&tids[i], NULL, work, &w[i]), 0);
  }
  test_sleep_ms(300);
  {
    char args[1100];
    snprintf(args, sizeof args, "kill-master %s", dir());
    fixture(args, old_port, sizeof old_port);
  }
  killed = test_now_ms();
  for (n = 0; test_now_ms() - killed < 30000; ++n) {
    snprintf(probe_value, sizeof probe_value, "after-kill-%d", n);
    if (httpcache_cache_set(NULL, cache, "probe", 5, probe_value, strlen(probe_value), &one_minute) == HTTPCACHE_OK) {
      get_on_master(dir(), full.ptr, seen, sizeof seen);
      if (strcmp(seen, probe_value) == 0) {
        landed = test_now_ms() - killed;
        break;
      }
    }
    test_sleep_ms(50);
  }
  test_sleep_ms(300); /* calls go on against the new master */
  for (i = 0; i < 3; ++i) {
    __atomic_store_n(&w[i].stop, 1, __ATOMIC_RELEASE);
    pthread_join(tids[i], NULL);
  }
  printf("sentinel failover (%s): master on port %s killed; stores landed on the new master after %lld ms; "
         "calls %ld/%ld/%ld\n",
         label, old_port, (long long)landed, w[0].calls, w[1].calls, w[2].calls);
  for (i = 0; i < 3; ++i) {
    assert_int_equal(w[i].failed, 0);
    assert_int_equal(w[i].wrong, 0);
    assert_true(w[i].calls > 50);
  }
  if (landed < 0) fail_msg("no store reached the new master within 30 s");
  assert_true(landed < 15000); /* the fixture's failover takes about 3.5 s */
  {
    char args[1100];
    snprintf(args, sizeof args, "revive %s", dir());
    fixture(args, NULL, 0);
  }
  httpcache_buf_dispose(&full);
  httpcache_cache_free(cache);
}

/** A master SIGKILLed while 3 threads call: zero failed calls, then stores on the new master. */
static void test_sentinel_failover_under_load(void **state) {
  (void)state;
  failover_under_load("3 sentinels");
}

/** The same with one sentinel down: the other two still agree (quorum 2), and we ask them. */
static void test_sentinel_failover_with_a_sentinel_down(void **state) {
  char args[1100];
  (void)state;
  snprintf(args, sizeof args, "kill-sentinel %s 1", dir());
  fixture(args, NULL, 0);
  failover_under_load("sentinel 1 down");
  snprintf(args, sizeof args, "revive-sentinel %s 1", dir());
  fixture(args, NULL, 0);
}

/** rediss+sentinel://: the sentinels and the master over TLS. */
static void test_sentinel_over_tls(void **state) {
  char url[1024];
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  const char *d = getenv("HTTPCACHE_TEST_SENTINEL_TLS_DIR");
  (void)state;
  if (!d) fail_msg("HTTPCACHE_TEST_SENTINEL_TLS_DIR is not set: run through ctest");
  fixture_url(d, url, sizeof url);
  assert_non_null(strstr(url, "rediss+sentinel://"));
  assert_int_equal(httpcache_cache_open(&cache, url, test_unique_namespace("sentls"), NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "tls-master", 10, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_OK);
  assert_memory_equal(value.ptr, "tls-master", 10);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

typedef struct {
  int done, status;
  char value[64];
  char why[256]; /* httpcache_error_last() inside the completion, on failure */
} result;

static void on_get(int status, const void *value, size_t len, int64_t ttl_ms, void *payload) {
  result *r = payload;
  (void)ttl_ms;
  r->done = 1;
  r->status = status;
  if (status == HTTPCACHE_OK) snprintf(r->value, sizeof r->value, "%.*s", (int)len, (const char *)value);
}

static void on_done(int status, int64_t count, void *payload) {
  result *r = payload;
  (void)count;
  r->done = 1;
  r->status = status;
  if (status != HTTPCACHE_OK) snprintf(r->why, sizeof r->why, "%s", httpcache_error_last()->message);
}

/** The non-blocking API over Sentinel, driven by a host loop: the master is looked up in the
 *  background and the first requests wait for it without blocking (the host's timer drives
 *  them), so even the first store of a new handle reaches the master. */
static void test_sentinel_async(void **state) {
  char url[512];
  httpcache_cache *cache = NULL;
  httpcache_async *ctx = NULL;
  test_loop loop = TEST_LOOP_INIT;
  result r;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, fixture_url(dir(), url, sizeof url), test_unique_namespace("asen"), NULL, NULL),
                   HTTPCACHE_OK);
  assert_int_equal(httpcache_async_open(&ctx, cache, test_loop_watch, &loop), HTTPCACHE_OK);
  memset(&r, 0, sizeof r);
  assert_int_equal(httpcache_async_set(ctx, "k", 1, "async-master", 12, &one_minute, on_done, &r), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 2000), 0);
  assert_true(r.done);
  if (r.status != HTTPCACHE_OK) fail_msg("the first store failed: %s", r.why);
  memset(&r, 0, sizeof r);
  assert_int_equal(httpcache_async_get(ctx, "k", 1, on_get, &r), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 2000), 0);
  assert_int_equal(r.status, HTTPCACHE_OK);
  assert_string_equal(r.value, "async-master");
  assert_int_equal(loop.process_errors, 0);
  httpcache_async_free(ctx);
  httpcache_cache_free(cache);
}

/** No sentinel reachable: calls fail open with a message naming the service. */
static void test_sentinel_none_reachable(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster?connect_timeout_ms=200",
                                        "t", NULL, NULL),
                   HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  if (!strstr(httpcache_error_last()->message, "mymaster")) fail_msg("%s", httpcache_error_last()->message);
  httpcache_cache_free(cache);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sentinel_finds_master),
      cmocka_unit_test(test_sentinel_none_reachable),
      cmocka_unit_test(test_sentinel_over_tls),
      cmocka_unit_test(test_sentinel_async),
      cmocka_unit_test(test_sentinel_failover_under_load),
      cmocka_unit_test(test_sentinel_failover_with_a_sentinel_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
