/* SPDX-License-Identifier: MIT
 * Redis Cluster specifics on a real local cluster (3 masters with a replica each): keys spread
 * over the nodes by slot, hash tags, invalidation across nodes, resharding under load and a
 * master failover, with zero failed calls. */
#define _POSIX_C_SOURCE 200809L
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "httpcache.h"
#include "support.h"

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

static int ports[16], nports;

static void load_ports(void) {
  char path[1024];
  FILE *f;
  snprintf(path, sizeof path, "%s/ports", getenv("HTTPCACHE_TEST_CLUSTER_DIR"));
  f = fopen(path, "r");
  assert_non_null(f);
  nports = 0;
  while (nports < 16 && fscanf(f, "%d", &ports[nports]) == 1) ++nports;
  fclose(f);
}

static redisContext *node(int port) {
  redisContext *c = redisConnect("127.0.0.1", port);
  assert_non_null(c);
  assert_int_equal(c->err, 0);
  return c;
}

/* The master port that holds `full_key` (asks every node; only the owner has it). */
static int holder(const char *full_key) {
  int i, found = 0;
  for (i = 0; i < nports; ++i) {
    redisContext *c = node(ports[i]);
    redisReply *r = redisCommand(c, "READONLY");
    freeReplyObject(r);
    r = redisCommand(c, "ROLE");
    if (r && r->type == REDIS_REPLY_ARRAY && strcmp(r->element[0]->str, "master") == 0) {
      redisReply *e = redisCommand(c, "EXISTS %s", full_key);
      if (e && e->type == REDIS_REPLY_INTEGER && e->integer == 1) found = ports[i];
      freeReplyObject(e);
    }
    freeReplyObject(r);
    redisFree(c);
  }
  return found;
}

/** Keys land on different masters by slot; {hash tags} keep keys together; one invalidation call
 *  deletes keys living on several nodes. */
static void test_cluster_routing_and_tags(void **state) {
  httpcache_cache *cache = NULL;
  const char *ns = test_unique_namespace("route");
  char key[64], full[512];
  int i, homes[3] = {0, 0, 0}, distinct = 0, tagged_home = -1;
  const void *keys[30];
  size_t lens[30], deleted = 0;
  static char names[30][64];
  (void)state;
  load_ports();
  assert_int_equal(httpcache_cache_open(&cache, test_cluster_url(), ns, NULL, NULL), 0);
  for (i = 0; i < 30; ++i) {
    snprintf(names[i], sizeof names[i], "spread.%d", i);
    keys[i] = names[i];
    lens[i] = strlen(names[i]);
    assert_int_equal(httpcache_cache_set(NULL, cache, names[i], lens[i], "v", 1, &one_minute), 0);
  }
  for (i = 0; i < 30; ++i) {
    int h, j;
    snprintf(full, sizeof full, "%.200s:%.200s", ns, names[i]);
    h = holder(full);
    assert_true(h != 0);
    for (j = 0; j < 3; ++j) {
      if (homes[j] == h) break;
      if (homes[j] == 0) {
        homes[j] = h;
        ++distinct;
        break;
      }
    }
  }
  assert_int_equal(distinct, 3); /* 30 keys use all three masters */
  for (i = 0; i < 10; ++i) {
    snprintf(key, sizeof key, "{user.42}.page%d", i);
    assert_int_equal(httpcache_cache_set(NULL, cache, key, strlen(key), "v", 1, &one_minute), 0);
    snprintf(full, sizeof full, "%.200s:%.200s", ns, key);
    if (tagged_home < 0) tagged_home = holder(full);
    assert_int_equal(holder(full), tagged_home);
  }
  assert_int_equal(httpcache_cache_invalidate(&deleted, cache, keys, lens, 30), 0);
  assert_int_equal(deleted, 30);
  for (i = 0; i < 30; ++i) {
    httpcache_buf v = HTTPCACHE_BUF_INIT;
    assert_int_equal(httpcache_cache_get(&v, NULL, cache, names[i], lens[i]), HTTPCACHE_ENOTFOUND);
  }
  httpcache_cache_free(cache);
}

/* ---- load ---- */

typedef struct {
  httpcache_cache *cache;
  int stop; /* read and written with __atomic builtins */
  int id;
  long calls, failures, stale, unchecked;
  long set_errors, invalidate_errors, get_errors; /* failed attempts, retries included */
} worker;

static int compute_v2(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  (void)payload;
  return httpcache_buf_set(out, "v2", 2);
}

/* Retries `call` until it succeeds (or, for a get, finds nothing), counting failed attempts in
 * *errors, for at most 20 s (the failover's outage lasts a few seconds; the breaker skips for
 * 500 ms at a time). Returns the last status. */
#define RETRY(rc, call, ok, errors)                                   \
  do {                                                                \
    int64_t end_ = test_now_ms() + 20000;                             \
    for (;;) {                                                        \
      (rc) = (call);                                                  \
      if (ok) break;                                                  \
      ++*(errors);                                                    \
      if (test_now_ms() >= end_) break;                               \
      test_sleep_ms(5);                                               \
    }                                                                 \
  } while (0)

/* Each worker owns its keys: set v1, invalidate, then a read must not see v1 (stale), and
 * get_or_compute must return v2 without failing. The stale check is never skipped: the
 * invalidation and the read are retried until they succeed, and a round whose check could not
 * be made at all is counted (`unchecked`) and fails the test. */
static void *load_worker(void *arg) {
  worker *w = arg;
  unsigned n = 0;
  while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
    char key[64];
    size_t len;
    const void *kp[1];
    httpcache_buf v = HTTPCACHE_BUF_INIT;
    int rc;
    snprintf(key, sizeof key, "load.%d.%u", w->id, n++ % 200);
    len = strlen(key);
    kp[0] = key;
    ++w->calls;
    if (httpcache_cache_set(NULL, w->cache, key, len, "v1", 2, &one_minute) != 0) ++w->set_errors;
    RETRY(rc, httpcache_cache_invalidate(NULL, w->cache, kp, &len, 1), rc == 0, &w->invalidate_errors);
    if (rc == 0) {
      RETRY(rc, httpcache_cache_get(&v, NULL, w->cache, key, len), rc == 0 || rc == HTTPCACHE_ENOTFOUND,
            &w->get_errors);
      if (rc == 0 && v.size == 2 && memcmp(v.ptr, "v1", 2) == 0) ++w->stale;
      if (rc != 0 && rc != HTTPCACHE_ENOTFOUND) ++w->unchecked;
    } else {
      ++w->unchecked;
    }
    if (httpcache_cache_get_or_compute(&v, NULL, NULL, w->cache, key, len, &one_minute, compute_v2, NULL) != 0 ||
        v.size != 2 || memcmp(v.ptr, "v2", 2) != 0)
      ++w->failures;
    httpcache_buf_dispose(&v);
    test_sleep_ms(1); /* a steady load that leaves the cluster's own processes some CPU */
  }
  return NULL;
}

enum { WORKERS = 4 };

static void start_load(worker *w, pthread_t *tids, const char *ns) {
  int i;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  opts.command_timeout_ms = 500;
  for (i = 0; i < WORKERS; ++i) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].id = i;
    assert_int_equal(httpcache_cache_open(&w[i].cache, test_cluster_url(), ns, NULL, &opts), 0);
    assert_int_equal(pthread_create(&tids[i], NULL, load_worker, &w[i]), 0);
  }
}

typedef struct {
  long calls, failures, stale, unchecked, set_errors, invalidate_errors, get_errors;
} load_totals;

static load_totals stop_load(worker *w, pthread_t *tids, const char *what) {
  load_totals t;
  int i;
  memset(&t, 0, sizeof t);
  for (i = 0; i < WORKERS; ++i) __atomic_store_n(&w[i].stop, 1, __ATOMIC_RELAXED);
  for (i = 0; i < WORKERS; ++i) {
    pthread_join(tids[i], NULL);
    t.calls += w[i].calls;
    t.failures += w[i].failures;
    t.stale += w[i].stale;
    t.unchecked += w[i].unchecked;
    t.set_errors += w[i].set_errors;
    t.invalidate_errors += w[i].invalidate_errors;
    t.get_errors += w[i].get_errors;
    httpcache_cache_free(w[i].cache);
  }
  printf("%s: %ld rounds, %ld failed get_or_compute, %ld stale reads after invalidation, %ld rounds unchecked; "
         "failed attempts (retried): %ld set, %ld invalidate, %ld get\n",
         what, t.calls, t.failures, t.stale, t.unchecked, t.set_errors, t.invalidate_errors, t.get_errors);
  assert_true(t.calls > 100);
  assert_int_equal(t.failures, 0);
  assert_int_equal(t.stale, 0);
  assert_int_equal(t.unchecked, 0);
  return t;
}

/* Runs a shell command, showing its output's tail when it fails. */
static int run(const char *cmd) {
  char full[2048];
  int rc;
  snprintf(full, sizeof full, "%s >/tmp/httpcache-cluster-cmd.log 2>&1", cmd);
  rc = system(full);
  if (rc != 0) (void)!system("tail -20 /tmp/httpcache-cluster-cmd.log");
  return rc;
}

/** Slots move between masters (redis-cli --cluster reshard) while calls run: no failed call
 *  (get_or_compute, and no backend error on set, invalidate or get either), no stale value after
 *  an invalidation. */
static void test_cluster_reshard_under_load(void **state) {
  worker w[WORKERS];
  pthread_t tids[WORKERS];
  char cmd[1024], from[64], to[64];
  redisContext *c;
  redisReply *r;
  (void)state;
  load_ports();
  /* The node ids of the first two masters. */
  c = node(ports[0]);
  r = redisCommand(c, "CLUSTER MYID");
  snprintf(from, sizeof from, "%s", r->str);
  freeReplyObject(r);
  redisFree(c);
  c = node(ports[1]);
  r = redisCommand(c, "CLUSTER MYID");
  snprintf(to, sizeof to, "%s", r->str);
  freeReplyObject(r);
  redisFree(c);

  start_load(w, tids, test_unique_namespace("reshard"));
  test_sleep_ms(300);
  {
  int rc1, rc2;
  snprintf(cmd, sizeof cmd,
           "redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s --cluster-slots 1500 "
           "--cluster-yes",
           ports[0], from, to);
  rc1 = run(cmd);
  /* The next reshard needs every node to agree on the new configuration first. */
  snprintf(cmd, sizeof cmd, "for i in $(seq 100); do redis-cli --cluster check 127.0.0.1:%d | grep -q \"don't agree\" || "
           "break; sleep 0.1; done; redis-cli --cluster check 127.0.0.1:%d", ports[0], ports[0]);
  (void)run(cmd);
  snprintf(cmd, sizeof cmd,
           "redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s --cluster-slots 1500 "
           "--cluster-yes",
           ports[0], to, from);
  rc2 = run(cmd);
  test_sleep_ms(300);
  {
    load_totals t = stop_load(w, tids, "reshard"); /* before any assertion: the workers use this stack frame */
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    /* The blocking path follows MOVED and ASK (docs/design.md), and every node stays up: no call
     * may fail while slots move. */
    assert_int_equal(t.set_errors, 0);
    assert_int_equal(t.invalidate_errors, 0);
    assert_int_equal(t.get_errors, 0);
  }
  }
}

/** A master dies; its replica takes over (the cluster's own failure detection). Calls keep
 *  succeeding throughout (fail open), and the cache works again on the new master. */
static void test_cluster_failover(void **state) {
  worker w[WORKERS];
  pthread_t tids[WORKERS];
  char pidpath[1024];
  FILE *f;
  int pid = 0, i, ok = 0;
  int64_t started;
  httpcache_cache *cache = NULL;
  (void)state;
  load_ports();
  snprintf(pidpath, sizeof pidpath, "%s/node-%d/pid", getenv("HTTPCACHE_TEST_CLUSTER_DIR"), ports[2]);
  f = fopen(pidpath, "r");
  assert_non_null(f);
  assert_int_equal(fscanf(f, "%d", &pid), 1);
  fclose(f);

  start_load(w, tids, test_unique_namespace("failover"));
  test_sleep_ms(300);
  assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
  started = test_now_ms();
  /* Wait until a replica has taken the dead master's slots: every slot is served again. */
  assert_int_equal(httpcache_cache_open(&cache, test_cluster_url(), test_unique_namespace("probe"), NULL, NULL), 0);
  while (test_now_ms() - started < 15000) {
    for (i = 0, ok = 1; i < 64 && ok; ++i) {
      char key[32];
      snprintf(key, sizeof key, "probe.%d", i);
      if (httpcache_cache_set(NULL, cache, key, strlen(key), "x", 1, &one_minute) != 0) ok = 0;
    }
    if (ok) break;
    test_sleep_ms(100);
  }
  if (!ok) {
    snprintf(pidpath, sizeof pidpath, "redis-cli -p %d cluster nodes", ports[0]);
    (void)!system(pidpath);
  }
  printf("failover: all slots writable again %lld ms after the master was killed\n",
         (long long)(test_now_ms() - started));
  test_sleep_ms(500);
  (void)stop_load(w, tids, "failover"); /* errors while the master is dead are expected: fail open */
  assert_true(ok);
  httpcache_cache_free(cache);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_routing_and_tags),
      cmocka_unit_test(test_cluster_reshard_under_load),
      cmocka_unit_test(test_cluster_failover),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
