/* SPDX-License-Identifier: MIT
 * Fencing (issue 13, findings 7, 12 and 16) on memory://, one Redis server and the cluster:
 * - a slow reader that read the "database" before a writer's update and invalidation never stores
 *   its value after the invalidation, and a caller arriving after the invalidation never receives
 *   it (in-process single-flight included); in threads, and across processes (fork);
 * - a compute callback calling get_or_compute on its own key does not wait for itself;
 * - concurrent callers of a key whose computation fails run it once and all get its failure.
 * HTTPCACHE_TEST_FENCING_ROUNDS scales the 1,000 rounds down (sanitizer builds). */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

static const char *memory_url(void) { return "memory://"; }
typedef const char *(*url_fn)(void);

static int rounds(void) {
  const char *env = getenv("HTTPCACHE_TEST_FENCING_ROUNDS");
  int n = env && *env ? atoi(env) : 1000;
  return n > 0 ? n : 1000;
}

static httpcache_cache *open_cache(url_fn url, const char *ns, uint32_t singleflight_wait_ms) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL;
  opts.singleflight_wait_ms = singleflight_wait_ms;
  opts.breaker_failures = 1000;
  assert_int_equal(httpcache_cache_open(&c, url(), ns, "UTC", &opts), HTTPCACHE_OK);
  return c;
}

/* ---- a one-shot event ---- */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int set;
} event;
static void ev_init(event *e) {
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  e->set = 0;
}
static void ev_destroy(event *e) {
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
}
static void ev_set(event *e) {
  pthread_mutex_lock(&e->mu);
  e->set = 1;
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
}
/* 1 when set within ms. */
static int ev_wait(event *e, int ms) {
  struct timespec until;
  int rc = 0;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec += 1;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&e->mu);
  while (!e->set && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&e->cv, &e->mu, &until);
  rc = e->set;
  pthread_mutex_unlock(&e->mu);
  return rc;
}

/* ------------------------------------------------------------------------
 * Finding 7 in threads: reader computes from db, blocks; writer updates db and invalidates; a
 * late caller arrives; the reader is released. Zero stale results for the late caller, zero
 * stale values in the backend afterwards.
 * ------------------------------------------------------------------------ */

typedef struct {
  httpcache_cache *cache;
  char key[64];
  atomic_int db;
  event reader_read, release_reader, late_computing;
  int reader_status;
  long late_result;
  int late_status;
} race;

static int reader_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  race *r = payload;
  char text[32];
  int v = atomic_load(&r->db);
  (void)flags;
  ev_set(&r->reader_read);
  ev_wait(&r->release_reader, 5000);
  snprintf(text, sizeof text, "%d", v);
  return httpcache_buf_set(out, text, strlen(text));
}

static int late_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  race *r = payload;
  char text[32];
  (void)flags;
  snprintf(text, sizeof text, "%d", atomic_load(&r->db));
  ev_set(&r->late_computing);
  return httpcache_buf_set(out, text, strlen(text));
}

static const httpcache_ttl_policy minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

static void *reader_main(void *arg) {
  race *r = arg;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  r->reader_status =
      httpcache_cache_get_or_compute(&v, NULL, NULL, r->cache, r->key, strlen(r->key), &minute, reader_compute, r);
  httpcache_buf_dispose(&v);
  return NULL;
}

static void *late_main(void *arg) {
  race *r = arg;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  r->late_status =
      httpcache_cache_get_or_compute(&v, NULL, NULL, r->cache, r->key, strlen(r->key), &minute, late_compute, r);
  r->late_result = r->late_status == HTTPCACHE_OK ? strtol(v.ptr, NULL, 10) : -1;
  httpcache_buf_dispose(&v);
  return NULL;
}

/* The backend's value of the key: -1 when absent. */
static long stored_value(httpcache_cache *c, const char *key) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  long out = -1;
  if (httpcache_cache_get(&v, NULL, c, key, strlen(key)) == HTTPCACHE_OK) out = strtol(v.ptr, NULL, 10);
  httpcache_buf_dispose(&v);
  return out;
}

static void run_thread_race(url_fn url) {
  httpcache_cache *c = open_cache(url, test_unique_namespace("fence"), 5000);
  int n = rounds(), i, stale_served = 0, stale_stored = 0;
  for (i = 0; i < n; ++i) {
    race r;
    pthread_t reader, late;
    const void *keys[1];
    size_t lens[1];
    long now, after;
    memset(&r, 0, sizeof r);
    r.cache = c;
    snprintf(r.key, sizeof r.key, "race:%d", i);
    atomic_store(&r.db, 1);
    ev_init(&r.reader_read);
    ev_init(&r.release_reader);
    ev_init(&r.late_computing);
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &r), 0);
    assert_true(ev_wait(&r.reader_read, 5000));
    atomic_store(&r.db, 2); /* the writer: update, then invalidate */
    keys[0] = r.key;
    lens[0] = strlen(r.key);
    assert_int_equal(httpcache_cache_invalidate(NULL, c, keys, lens, 1), HTTPCACHE_OK);
    assert_int_equal(pthread_create(&late, NULL, late_main, &r), 0);
    /* The late caller either computes (fenced) or, unfenced, joins the reader's flight: give it
     * a moment to join before the reader goes on. */
    ev_wait(&r.late_computing, 20);
    ev_set(&r.release_reader);
    pthread_join(reader, NULL);
    pthread_join(late, NULL);
    assert_int_equal(r.reader_status, HTTPCACHE_OK);
    assert_int_equal(r.late_status, HTTPCACHE_OK);
    if (r.late_result != 2) ++stale_served;
    now = stored_value(c, r.key);
    if (now != -1 && now != 2) ++stale_stored;
    /* And one more caller after everything: never the old value. */
    {
      httpcache_buf v = HTTPCACHE_BUF_INIT;
      assert_int_equal(httpcache_cache_get_or_compute(&v, NULL, NULL, c, r.key, strlen(r.key), &minute, late_compute, &r),
                       HTTPCACHE_OK);
      after = strtol(v.ptr, NULL, 10);
      httpcache_buf_dispose(&v);
      if (after != 2) ++stale_served;
    }
    ev_destroy(&r.reader_read);
    ev_destroy(&r.release_reader);
    ev_destroy(&r.late_computing);
  }
  printf("# %s threads: %d rounds, %d stale served after the invalidation, %d stale stored\n", url(), n,
         stale_served, stale_stored);
  httpcache_cache_free(c);
  assert_int_equal(stale_served, 0);
  assert_int_equal(stale_stored, 0);
}

static void test_thread_race_memory(void **state) {
  (void)state;
  run_thread_race(memory_url);
}
static void test_thread_race_redis(void **state) {
  (void)state;
  run_thread_race(test_redis_url);
}
static void test_thread_race_cluster(void **state) {
  (void)state;
  run_thread_race(test_cluster_url);
}

/* ------------------------------------------------------------------------
 * Finding 7 across processes: the reader is a forked child with its own handle; the writer and
 * the late caller are the parent. The db lives in shared memory; pipes are the events.
 * ------------------------------------------------------------------------ */

typedef struct {
  atomic_int db;
} shared_db;

static int child_wr = -1, child_rd = -1;
static shared_db *sdb;

static int child_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  char text[32], b = 'r';
  int v = atomic_load(&sdb->db);
  (void)flags, (void)payload;
  if (write(child_wr, &b, 1) != 1) return -1; /* "read the db" */
  if (read(child_rd, &b, 1) != 1) return -1;  /* "go on" */
  snprintf(text, sizeof text, "%d", v);
  return httpcache_buf_set(out, text, strlen(text));
}

static int parent_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  char text[32];
  (void)flags, (void)payload;
  snprintf(text, sizeof text, "%d", atomic_load(&sdb->db));
  return httpcache_buf_set(out, text, strlen(text));
}

static void run_process_race(url_fn url) {
  int to_child[2], to_parent[2], n = rounds() / 4, i, stale_served = 0, stale_stored = 0;
  const char *ns = test_unique_namespace("fencep");
  char nsbuf[160];
  pid_t pid;
  if (n < 10) n = 10;
  snprintf(nsbuf, sizeof nsbuf, "%s", ns);
  sdb = mmap(NULL, sizeof *sdb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sdb != MAP_FAILED);
  assert_int_equal(pipe(to_child), 0);
  assert_int_equal(pipe(to_parent), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    httpcache_cache *c = NULL;
    char b, key[64];
    close(to_child[1]);
    close(to_parent[0]);
    child_rd = to_child[0];
    child_wr = to_parent[1];
    if (httpcache_cache_open(&c, url(), nsbuf, "UTC", NULL) != HTTPCACHE_OK) _exit(2);
    for (i = 0; i < n; ++i) {
      httpcache_buf v = HTTPCACHE_BUF_INIT;
      if (read(child_rd, &b, 1) != 1) _exit(3); /* "start round i" */
      snprintf(key, sizeof key, "prace:%d", i);
      if (httpcache_cache_get_or_compute(&v, NULL, NULL, c, key, strlen(key), &minute, child_compute, NULL) !=
          HTTPCACHE_OK)
        _exit(4);
      httpcache_buf_dispose(&v);
      b = 'd';
      if (write(child_wr, &b, 1) != 1) _exit(5); /* "done" */
    }
    httpcache_cache_free(c);
    _exit(0);
  }
  close(to_child[0]);
  close(to_parent[1]);
  {
    httpcache_cache *c = open_cache(url, nsbuf, 5000);
    int status = 0;
    for (i = 0; i < n; ++i) {
      char key[64], b = 's';
      const void *keys[1];
      size_t lens[1];
      httpcache_buf v = HTTPCACHE_BUF_INIT;
      long got, now;
      snprintf(key, sizeof key, "prace:%d", i);
      atomic_store(&sdb->db, 1);
      assert_int_equal(write(to_child[1], &b, 1), 1);
      assert_int_equal(read(to_parent[0], &b, 1), 1); /* the child read the db */
      atomic_store(&sdb->db, 2);
      keys[0] = key;
      lens[0] = strlen(key);
      assert_int_equal(httpcache_cache_invalidate(NULL, c, keys, lens, 1), HTTPCACHE_OK);
      assert_int_equal(httpcache_cache_get_or_compute(&v, NULL, NULL, c, key, strlen(key), &minute, parent_compute, NULL),
                       HTTPCACHE_OK);
      got = strtol(v.ptr, NULL, 10);
      httpcache_buf_dispose(&v);
      if (got != 2) ++stale_served;
      b = 'g';
      assert_int_equal(write(to_child[1], &b, 1), 1);
      assert_int_equal(read(to_parent[0], &b, 1), 1); /* the child returned (and stored, or not) */
      now = stored_value(c, key);
      if (now != -1 && now != 2) ++stale_stored;
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("# %s processes: %d rounds, %d stale served, %d stale stored\n", url(), n, stale_served, stale_stored);
    httpcache_cache_free(c);
  }
  close(to_child[1]);
  close(to_parent[0]);
  munmap(sdb, sizeof *sdb);
  assert_int_equal(stale_served, 0);
  assert_int_equal(stale_stored, 0);
}

static void test_process_race_redis(void **state) {
  (void)state;
  run_process_race(test_redis_url);
}
static void test_process_race_cluster(void **state) {
  (void)state;
  run_process_race(test_cluster_url);
}
static void test_process_race_memory_is_per_process(void **state) {
  (void)state; /* memory:// is per process: nothing to fence across processes */
}

/* ------------------------------------------------------------------------
 * Finding 12: a compute callback calling get_or_compute on its own key.
 * ------------------------------------------------------------------------ */

typedef struct {
  httpcache_cache *cache;
  int inner_status;
  httpcache_outcome inner_outcome;
} reentry;

static int inner_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags, (void)payload;
  return httpcache_buf_set(out, "inner", 5);
}

static int outer_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  reentry *r = payload;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  (void)flags;
  r->inner_status =
      httpcache_cache_get_or_compute(&v, NULL, &r->inner_outcome, r->cache, "self", 4, &minute, inner_compute, NULL);
  httpcache_buf_dispose(&v);
  return httpcache_buf_set(out, "outer", 5);
}

static void run_reentry(url_fn url) {
  reentry r;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int64_t t0;
  memset(&r, 0, sizeof r);
  r.cache = open_cache(url, test_unique_namespace("reenter"), 3000);
  t0 = test_now_ms();
  assert_int_equal(httpcache_cache_get_or_compute(&v, NULL, NULL, r.cache, "self", 4, &minute, outer_compute, &r),
                   HTTPCACHE_OK);
  printf("# %s re-entrant call took %lld ms\n", url(), (long long)(test_now_ms() - t0));
  assert_true(test_now_ms() - t0 < 1000); /* never the 3 s wait for itself */
  assert_int_equal(r.inner_status, HTTPCACHE_OK);
  assert_int_equal(r.inner_outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_string_equal(v.ptr, "outer");
  httpcache_buf_dispose(&v);
  httpcache_cache_free(r.cache);
}

static void test_reentry_memory(void **state) {
  (void)state;
  run_reentry(memory_url);
}
static void test_reentry_redis(void **state) {
  (void)state;
  run_reentry(test_redis_url);
}
static void test_reentry_cluster(void **state) {
  (void)state;
  run_reentry(test_cluster_url);
}

/* ------------------------------------------------------------------------
 * Finding 16: 50 concurrent callers of a failing computation run it once and share its failure.
 * ------------------------------------------------------------------------ */

#define NFAIL 50
typedef struct {
  httpcache_cache *cache;
  char key[64];
  atomic_int runs, arrived;
  int status[NFAIL];
  char message[NFAIL][256];
} failing;

static failing *the_failing;

static int failing_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  failing *f = payload;
  int64_t until = test_now_ms() + 2000;
  (void)out, (void)flags;
  atomic_fetch_add(&f->runs, 1);
  /* Stay in the computation until every caller has arrived (then a little longer, so that they
   * have joined the flight). */
  while (atomic_load(&f->arrived) < NFAIL && test_now_ms() < until) test_sleep_ms(1);
  test_sleep_ms(50);
  return -42;
}

/* Opens one pooled connection per caller first (pool_size NFAIL): over TLS, and slower under
 * ASan, fifty handshakes at the race's start would delay callers past the leader's flight. */
static void *warm_main(void *arg) {
  failing *f = arg;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  (void)httpcache_cache_get(&v, NULL, f->cache, "warm", 4);
  httpcache_buf_dispose(&v);
  return NULL;
}

static void *failing_main(void *arg) {
  int i = (int)(intptr_t)arg;
  failing *f = the_failing;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  atomic_fetch_add(&f->arrived, 1);
  f->status[i] = httpcache_cache_get_or_compute(&v, NULL, NULL, f->cache, f->key, strlen(f->key), &minute,
                                                failing_compute, f);
  snprintf(f->message[i], sizeof f->message[i], "%s", httpcache_error_last()->message);
  httpcache_buf_dispose(&v);
  return NULL;
}

static void run_shared_failure(url_fn url) {
  static failing f;
  pthread_t t[NFAIL];
  int i;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  memset(&f, 0, sizeof f);
  opts.singleflight_wait_ms = 5000;
  opts.breaker_failures = 1000;
  opts.pool_size = NFAIL;
  assert_int_equal(httpcache_cache_open(&f.cache, url(), test_unique_namespace("fail"), "UTC", &opts), HTTPCACHE_OK);
  snprintf(f.key, sizeof f.key, "boom");
  the_failing = &f;
  for (i = 0; i < NFAIL; ++i) assert_int_equal(pthread_create(&t[i], NULL, warm_main, &f), 0);
  for (i = 0; i < NFAIL; ++i) pthread_join(t[i], NULL);
  for (i = 0; i < NFAIL; ++i) assert_int_equal(pthread_create(&t[i], NULL, failing_main, (void *)(intptr_t)i), 0);
  for (i = 0; i < NFAIL; ++i) pthread_join(t[i], NULL);
  printf("# %s: %d callers, the failing computation ran %d times\n", url(), NFAIL, atomic_load(&f.runs));
  for (i = 0; i < NFAIL; ++i) {
    assert_int_equal(f.status[i], -42);
    assert_string_equal(f.message[i], f.message[0]);
  }
  assert_int_equal(atomic_load(&f.runs), 1);
  httpcache_cache_free(f.cache);
}

static void test_shared_failure_memory(void **state) {
  (void)state;
  run_shared_failure(memory_url);
}
static void test_shared_failure_redis(void **state) {
  (void)state;
  run_shared_failure(test_redis_url);
}

/* ------------------------------------------------------------------------
 * The non-blocking API: a get miss takes the lease; an invalidation voids it, so the set that
 * follows is refused (ENOTFOUND) and nothing stale is stored.
 * ------------------------------------------------------------------------ */

typedef struct {
  int done, status;
  int64_t n;
} completion;

static void on_get(int status, const void *value, size_t len, int64_t ttl_ms, void *payload) {
  completion *c = payload;
  (void)value, (void)len;
  c->done = 1;
  c->status = status;
  c->n = ttl_ms;
}
static void on_done(int status, int64_t n, void *payload) {
  completion *c = payload;
  c->done = 1;
  c->status = status;
  c->n = n;
}
static void watch_nothing(httpcache_fd fd, uint32_t events, void *payload) { (void)fd, (void)events, (void)payload; }

static void drive(httpcache_async *a, completion *c) {
  int64_t until = test_now_ms() + 3000;
  while (!c->done && test_now_ms() < until) {
    httpcache_async_process(a, HTTPCACHE_EV_READ | HTTPCACHE_EV_WRITE);
    if (!c->done) test_sleep_ms(1);
  }
  assert_true(c->done);
}

static void run_async_fence(url_fn url) {
  httpcache_cache *c = open_cache(url, test_unique_namespace("afence"), 5000);
  httpcache_async *a = NULL;
  int n = rounds() / 4, i, stale_stored = 0;
  if (n < 10) n = 10;
  assert_int_equal(httpcache_async_open(&a, c, watch_nothing, NULL), HTTPCACHE_OK);
  for (i = 0; i < n; ++i) {
    char key[64];
    const void *keys[1];
    size_t lens[1];
    completion g = {0, 0, 0}, s = {0, 0, 0};
    snprintf(key, sizeof key, "arace:%d", i);
    assert_int_equal(httpcache_async_get(a, key, strlen(key), on_get, &g), HTTPCACHE_OK);
    drive(a, &g);
    assert_int_equal(g.status, HTTPCACHE_ENOTFOUND);
    keys[0] = key;
    lens[0] = strlen(key);
    assert_int_equal(httpcache_cache_invalidate(NULL, c, keys, lens, 1), HTTPCACHE_OK); /* the writer */
    assert_int_equal(httpcache_async_set(a, key, strlen(key), "1", 1, &minute, on_done, &s), HTTPCACHE_OK);
    drive(a, &s);
    if (stored_value(c, key) == 1) ++stale_stored;
  }
  printf("# %s async: %d rounds, %d stale stored\n", url(), n, stale_stored);
  httpcache_async_free(a);
  httpcache_cache_free(c);
  assert_int_equal(stale_stored, 0);
}

static void test_async_fence_memory(void **state) {
  (void)state;
  run_async_fence(memory_url);
}
static void test_async_fence_redis(void **state) {
  (void)state;
  run_async_fence(test_redis_url);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thread_race_memory),      cmocka_unit_test(test_thread_race_redis),
      cmocka_unit_test(test_thread_race_cluster),     cmocka_unit_test(test_process_race_redis),
      cmocka_unit_test(test_process_race_cluster),    cmocka_unit_test(test_process_race_memory_is_per_process),
      cmocka_unit_test(test_reentry_memory),          cmocka_unit_test(test_reentry_redis),
      cmocka_unit_test(test_reentry_cluster),         cmocka_unit_test(test_shared_failure_memory),
      cmocka_unit_test(test_shared_failure_redis),    cmocka_unit_test(test_async_fence_memory),
      cmocka_unit_test(test_async_fence_redis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
