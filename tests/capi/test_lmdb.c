/* SPDX-License-Identifier: MIT
 * lmdb://DIR: the store every process of a host shares by opening the same directory
 * (core/lmdb_backend.hpp). No server is needed: each test opens a fresh directory under one
 * mkdtemp() directory, removed at the end.
 *
 *  - basic calls: set/get with the remaining TTL, expiry, invalidate, get_or_compute, stats, and
 *    the non-blocking API completing inside the call that starts it;
 *  - 4 processes x 8 threads of get_or_compute on 200 shared keys (each process opening its own
 *    handle, then all using one handle opened before fork()): every cold key computed once across
 *    processes (counted in MAP_SHARED memory), no value ever another key's, an invalidation seen
 *    by every other process as soon as the call returns;
 *  - writers SIGKILLed at random moments, 100 rounds: every entry missing or exactly right, every
 *    write reported committed present;
 *  - max_bytes: filling 20 times past it (no error, the file bounded, the oldest evicted, a value
 *    over max_bytes/8 not stored), and the approximate LRU (entries read survive, unread ones of
 *    the same age do not), also when a thread reads its hot keys in a fixed order;
 *  - reopening after a crash, a dead reader's slot reclaimed (raw liblmdb readers killed holding
 *    a read transaction), writes past the limit with such a stale reader pinning old pages, a
 *    store from another boot starting empty;
 *  - namespaces apart, keys over 400 bytes (hashed) never answered with another key's record;
 *  - bad URLs and a store opened with another max_bytes: clear errors;
 *  - a handle opened before fork() used in the child;
 *  - recency kept for what is only read: a tag's generation read with its entry, and the hot keys
 *    of a process that never writes (it learns the older half and writes its re-stamps itself);
 *  - peek never opening the store (a forked child) nor failing (an unusable directory);
 *  - handles opened and freed at once by many threads of two processes (one environment per
 *    directory per process: every call right, the LMDB lock always held);
 *  - a directory others may write refused, a store without boot_id starting empty.
 *
 * Children never call CMocka: they count failures in shared memory and _exit(); the parent asserts.
 * HTTPCACHE_TEST_SEED fixes the random kill times (the seed used is printed). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

#define MIB (1024ull * 1024ull)

static char base_dir[256];
static unsigned seed;

static const httpcache_ttl_policy one_hour = {HTTPCACHE_TTL_SECONDS, 3600, NULL, NULL};
static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
static const httpcache_ttl_policy one_second = {HTTPCACHE_TTL_SECONDS, 1, NULL, NULL};

/* ---- per-test directory ---- */

typedef struct {
  char dir[512];
  char url[700];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "%s/tXXXXXX", base_dir);
  if (!mkdtemp(f->dir)) return -1;
  /* A directory that does not exist yet: the backend creates it (mode 0700). */
  strncat(f->dir, "/store", sizeof f->dir - strlen(f->dir) - 1);
  snprintf(f->url, sizeof f->url, "lmdb://%s", f->dir);
  *state = f;
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int teardown(void **state) {
  fixture *f = *state;
  char *slash = strrchr(f->dir, '/');
  *slash = '\0'; /* the mkdtemp() directory */
  remove_tree(f->dir);
  free(f);
  return 0;
}

/* url + "?" + query ("" for none) */
static const char *url_with(const fixture *f, const char *query, char *out, size_t cap) {
  snprintf(out, cap, "%s%s%s", f->url, query[0] ? "?" : "", query);
  return out;
}

static httpcache_cache *open_or_fail(const char *url, const char *ns, const httpcache_options *opts) {
  httpcache_cache *c = NULL;
  if (httpcache_cache_open(&c, url, ns, NULL, opts) != HTTPCACHE_OK)
    fail_msg("open %s: %s", url, httpcache_error_last()->message);
  return c;
}

/* In a child: NULL when the handle cannot be opened. */
static httpcache_cache *open_quiet(const char *url, const char *ns, const httpcache_options *opts) {
  httpcache_cache *c = NULL;
  return httpcache_cache_open(&c, url, ns, NULL, opts) == HTTPCACHE_OK ? c : NULL;
}

static void *shared_alloc(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(p != MAP_FAILED);
  memset(p, 0, size);
  return p;
}

static pid_t fork_child(void) {
  pid_t pid;
  fflush(NULL);
  pid = fork();
  assert_true(pid >= 0);
  return pid;
}

/* Waits for a child; past deadline_ms it is killed. Its wait status. */
static int wait_child(pid_t pid, int deadline_ms) {
  int status = 0;
  int64_t end = test_now_ms() + deadline_ms;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) fail_msg("waitpid %d: %s", (int)pid, strerror(errno));
    if (test_now_ms() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("child %d did not finish within %d ms", (int)pid, deadline_ms);
    }
    test_sleep_ms(1);
  }
}

static void assert_exited_ok(pid_t pid, int deadline_ms) {
  int status = wait_child(pid, deadline_ms);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("child %d: %s %d", (int)pid, WIFEXITED(status) ? "exit status" : "killed by signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* Adds one to *counter and waits until it reaches n; -1 after timeout_ms. For children. */
static int arrive_and_wait(int *counter, int n, int timeout_ms) {
  int64_t end = test_now_ms() + timeout_ms;
  __atomic_add_fetch(counter, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < n) {
    if (test_now_ms() > end) return -1;
    usleep(100);
  }
  return 0;
}

static int wait_flag(const int *flag, int timeout_ms) {
  int64_t end = test_now_ms() + timeout_ms;
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
    if (test_now_ms() > end) return -1;
    usleep(100);
  }
  return 0;
}

/* The value of `key`: derived from the key alone, long enough that another key's never matches. */
static size_t value_of(char *out, size_t cap, const char *key) {
  unsigned h = 2166136261u;
  size_t n, i, len;
  for (i = 0; key[i]; ++i) h = (h ^ (unsigned char)key[i]) * 16777619u;
  n = (size_t)snprintf(out, cap, "value-of|%s|%08x|", key, h);
  len = n + h % 200;
  if (len >= cap) len = cap - 1;
  for (i = n; i < len; ++i) out[i] = (char)('a' + (h + i * 7) % 26);
  out[len] = '\0';
  return len;
}

/* The value at `key` equals value_of(key) */
static int holds_own_value(const httpcache_buf *v, const char *key) {
  char expected[512];
  size_t len = value_of(expected, sizeof expected, key);
  return v->size == len && memcmp(v->ptr, expected, len) == 0;
}

static void expect_own_value(httpcache_cache *c, const char *key) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get(&v, NULL, c, key, strlen(key));
  if (rc != HTTPCACHE_OK) fail_msg("get %s: %d (%s)", key, rc, httpcache_error_last()->message);
  if (!holds_own_value(&v, key)) fail_msg("get %s: a wrong value '%.*s'", key, (int)v.size, v.ptr);
  httpcache_buf_dispose(&v);
}

static void set_own_value(httpcache_cache *c, const char *key) {
  char value[512];
  size_t len = value_of(value, sizeof value, key);
  int rc = httpcache_cache_set(NULL, c, key, strlen(key), value, len, &one_hour);
  if (rc != HTTPCACHE_OK) fail_msg("set %s: %d (%s)", key, rc, httpcache_error_last()->message);
}

static int get_rc(httpcache_cache *c, const char *key) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get(&v, NULL, c, key, strlen(key));
  httpcache_buf_dispose(&v);
  return rc;
}

/* ---- raw liblmdb, opened as lmdb_backend.cpp opens the store ---- */

static int raw_open(MDB_env **env, const char *dir, uint64_t max_bytes) {
  int rc = mdb_env_create(env);
  if (rc) return rc;
  if ((rc = mdb_env_set_maxdbs(*env, 8)) || (rc = mdb_env_set_maxreaders(*env, 1024)) ||
      (rc = mdb_env_set_mapsize(*env, (size_t)(2 * max_bytes + 32 * MIB))) ||
      (rc = mdb_env_open(*env, dir, MDB_NOSYNC | MDB_NORDAHEAD | MDB_NOTLS, 0600))) {
    mdb_env_close(*env);
    *env = NULL;
  }
  return rc;
}

typedef struct {
  int pids[64];
  int n;
} reader_pids;

static int collect_reader(const char *msg, void *payload) {
  reader_pids *r = payload;
  int pid;
  if (sscanf(msg, "%d", &pid) == 1 && r->n < 64) r->pids[r->n++] = pid;
  return 0;
}

static int has_pid(const reader_pids *r, int pid) {
  for (int i = 0; i < r->n; ++i)
    if (r->pids[i] == pid) return 1;
  return 0;
}

/* ======================================================================== 1. basic calls */

typedef struct {
  int calls;
  const char *value;
} compute_state;

static int compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  compute_state *c = payload;
  (void)flags;
  ++c->calls;
  return httpcache_buf_set(out, c->value, strlen(c->value));
}

static void count_watch(httpcache_fd fd, uint32_t events, void *payload) {
  (void)fd;
  (void)events;
  ++*(int *)payload;
}

/** set/get with the remaining TTL, binary values, a 1 s entry lapsing, invalidate, get_or_compute,
 *  exact stats counters, and non-blocking calls that complete inside the call starting them. */
static void test_lmdb_basic(void **state) {
  fixture *f = *state;
  httpcache_cache *c = open_or_fail(f->url, "basic", NULL);
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  httpcache_outcome outcome = 0;
  compute_state cs = {0, "computed"};
  int64_t ttl_ms = -5, ttl_s = 0;
  size_t deleted = 99;
  const char bin[] = "\0\x01\xfe\xff\0tail";
  const char *keys[] = {"k", "absent", "bin"};
  size_t lens[] = {1, 6, 3};
  struct stat st;
  char path[600];

  assert_int_equal(httpcache_cache_get(&v, &ttl_ms, c, "k", 1), HTTPCACHE_ENOTFOUND); /* misses 1 */
  assert_null(v.ptr);
  assert_int_equal(ttl_ms, -5);
  assert_int_equal(httpcache_cache_set(&ttl_s, c, "k", 1, "v1", 2, &one_minute), HTTPCACHE_OK); /* stores 1 */
  assert_int_equal(ttl_s, 60);
  assert_int_equal(httpcache_cache_get(&v, &ttl_ms, c, "k", 1), HTTPCACHE_OK); /* hits 1 */
  assert_int_equal(v.size, 2);
  assert_memory_equal(v.ptr, "v1", 2);
  assert_in_range(ttl_ms, 58000, 60000);
  assert_int_equal(httpcache_cache_set(NULL, c, "k", 1, "v2-longer", 9, &one_minute), HTTPCACHE_OK); /* stores 2 */
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "k", 1), HTTPCACHE_OK); /* hits 2 */
  assert_int_equal(v.size, 9);
  assert_memory_equal(v.ptr, "v2-longer", 9);
  assert_int_equal(httpcache_cache_set(NULL, c, "bin", 3, bin, sizeof bin - 1, &one_minute), HTTPCACHE_OK); /* 3 */
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "bin", 3), HTTPCACHE_OK); /* hits 3 */
  assert_int_equal(v.size, sizeof bin - 1);
  assert_memory_equal(v.ptr, bin, sizeof bin - 1);
  assert_int_equal(httpcache_cache_set(NULL, c, "empty", 5, NULL, 0, &one_minute), HTTPCACHE_OK); /* 4 */
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "empty", 5), HTTPCACHE_OK); /* hits 4 */
  assert_int_equal(v.size, 0);

  /* A 1 s entry: a hit with at most 1000 ms left, a miss once it lapsed. */
  assert_int_equal(httpcache_cache_set(&ttl_s, c, "short", 5, "s", 1, &one_second), HTTPCACHE_OK); /* 5 */
  assert_int_equal(ttl_s, 1);
  assert_int_equal(httpcache_cache_get(&v, &ttl_ms, c, "short", 5), HTTPCACHE_OK); /* hits 5 */
  assert_in_range(ttl_ms, 1, 1000);
  test_sleep_ms(1100);
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "short", 5), HTTPCACHE_ENOTFOUND); /* misses 2 */

  /* invalidate: the existing keys count, a missing one is no error. */
  assert_int_equal(httpcache_cache_invalidate(&deleted, c, (const void *const *)keys, lens, 3), HTTPCACHE_OK);
  assert_int_equal(deleted, 2);
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "k", 1), HTTPCACHE_ENOTFOUND);   /* misses 3 */
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "bin", 3), HTTPCACHE_ENOTFOUND); /* misses 4 */
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "empty", 5), HTTPCACHE_OK);      /* hits 6 */
  /* The expired entry is not counted as deleted. */
  keys[0] = "short";
  lens[0] = 5;
  assert_int_equal(httpcache_cache_invalidate(&deleted, c, (const void *const *)keys, lens, 1), HTTPCACHE_OK);
  assert_int_equal(deleted, 0);

  /* get_or_compute: computed once and stored, then a hit. */
  assert_int_equal(httpcache_cache_get_or_compute(&v, &ttl_ms, &outcome, c, "goc", 3, &one_minute, compute, &cs),
                   HTTPCACHE_OK); /* misses 5, stores 6 */
  assert_int_equal(cs.calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(ttl_ms, 60000);
  assert_string_equal(v.ptr, "computed");
  cs.value = "other";
  assert_int_equal(httpcache_cache_get_or_compute(&v, &ttl_ms, &outcome, c, "goc", 3, &one_minute, compute, &cs),
                   HTTPCACHE_OK); /* hits 7 */
  assert_int_equal(cs.calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  assert_in_range(ttl_ms, 58000, 60000);
  assert_string_equal(v.ptr, "computed");
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "goc", 3), HTTPCACHE_OK); /* hits 8 */
  assert_string_equal(v.ptr, "computed");

  assert_int_equal(httpcache_cache_stats(&s, c), HTTPCACHE_OK);
  assert_int_equal(s.hits, 8);
  assert_int_equal(s.misses, 5);
  assert_int_equal(s.stores, 6);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.uncached, 0);
  assert_int_equal(s.breaker_open, 0);

  /* The files, private to the user. */
  snprintf(path, sizeof path, "%s/data.mdb", f->dir);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(stat(f->dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);

  /* Non-blocking calls complete inside the call that starts them; nothing is ever watched. */
  {
    httpcache_async *ctx = NULL;
    int watch_calls = 0;
    get_result g = {0};
    done_result d = {0};
    const char *akeys[] = {"a"};
    size_t alens[] = {1};
    assert_int_equal(httpcache_async_open(&ctx, c, count_watch, &watch_calls), HTTPCACHE_OK);
    assert_int_equal(httpcache_async_set(ctx, "a", 1, "async", 5, &one_minute, test_on_done, &d), HTTPCACHE_OK);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.status, HTTPCACHE_OK);
    assert_int_equal(d.count, 60);
    assert_int_equal(httpcache_async_get(ctx, "a", 1, test_on_get, &g), HTTPCACHE_OK);
    assert_int_equal(g.done, 1);
    assert_int_equal(g.status, HTTPCACHE_OK);
    assert_int_equal(g.size, 5);
    assert_memory_equal(g.value, "async", 5);
    assert_in_range(g.ttl_ms, 58000, 60000);
    /* the blocking calls see what the context stored */
    assert_int_equal(httpcache_cache_get(&v, NULL, c, "a", 1), HTTPCACHE_OK);
    assert_string_equal(v.ptr, "async");
    memset(&d, 0, sizeof d);
    assert_int_equal(httpcache_async_invalidate(ctx, (const void *const *)akeys, alens, 1, test_on_done, &d), HTTPCACHE_OK);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.count, 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(httpcache_async_get(ctx, "a", 1, test_on_get, &g), HTTPCACHE_OK);
    assert_int_equal(g.done, 1);
    assert_int_equal(g.status, HTTPCACHE_ENOTFOUND);
    assert_true(g.ttl_ms > 0); /* the miss took the key's lease */
    /* the lease fences the next set of this context: it is stored */
    memset(&d, 0, sizeof d);
    assert_int_equal(httpcache_async_set(ctx, "a", 1, "again", 5, &one_minute, test_on_done, &d), HTTPCACHE_OK);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.status, HTTPCACHE_OK);
    assert_int_equal(httpcache_cache_get(&v, NULL, c, "a", 1), HTTPCACHE_OK);
    assert_string_equal(v.ptr, "again");
    assert_int_equal(httpcache_async_pending(ctx), 0);
    assert_int_equal(httpcache_async_timeout_ms(ctx), -1);
    assert_int_equal(watch_calls, 0);
    httpcache_async_free(ctx);
  }
  httpcache_buf_dispose(&v);
  httpcache_cache_free(c);

  /* Reopened: the entries are on disk. */
  c = open_or_fail(f->url, "basic", NULL);
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "goc", 3), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "computed");
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "k", 1), HTTPCACHE_ENOTFOUND);
  httpcache_buf_dispose(&v);
  httpcache_cache_free(c);
}

/* ======================================================================== 2. processes x threads */

#define P2_PROCS 4
#define P2_THREADS 8
#define P2_KEYS 200

typedef struct {
  int computed[P2_KEYS];
  int wrong, failed, uncached, stale_reads, late_wrong, sync_timeouts;
  int ready;
  int invalidated[P2_PROCS];
  int phase[2 * P2_PROCS + 2];
} shared2;

static shared2 *sh2;
static httpcache_cache *p2_cache; /* the handle of this process (the parent's, in the inherited variant) */

static void p2_key(char *out, size_t cap, int i) { snprintf(out, cap, "shared-%03d", i); }

static int p2_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  int i = (int)(intptr_t)payload;
  char key[32], value[512];
  size_t len;
  (void)flags;
  __atomic_add_fetch(&sh2->computed[i], 1, __ATOMIC_ACQ_REL);
  usleep(1000); /* widens the window in which others miss the same key */
  p2_key(key, sizeof key, i);
  len = value_of(value, sizeof value, key);
  return httpcache_buf_set(out, value, len);
}

/* One get_or_compute of key i, checked; counts into sh2. */
static void p2_call(int i) {
  char key[32];
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = 0;
  int rc;
  p2_key(key, sizeof key, i);
  rc = httpcache_cache_get_or_compute(&v, NULL, &outcome, p2_cache, key, strlen(key), &one_hour, p2_compute,
                                      (void *)(intptr_t)i);
  if (rc != HTTPCACHE_OK)
    __atomic_add_fetch(&sh2->failed, 1, __ATOMIC_RELAXED);
  else if (!holds_own_value(&v, key))
    __atomic_add_fetch(&sh2->wrong, 1, __ATOMIC_RELAXED);
  if (rc == HTTPCACHE_OK && outcome == HTTPCACHE_OUTCOME_UNCACHED) __atomic_add_fetch(&sh2->uncached, 1, __ATOMIC_RELAXED);
  httpcache_buf_dispose(&v);
}

static void *p2_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int pass = 0; pass < 2; ++pass)
    for (int n = 0; n < P2_KEYS; ++n) p2_call((n * (t % 2 ? 1 : P2_KEYS - 1) + t * 13) % P2_KEYS);
  return NULL;
}

static int p2_inval_key(int r) { return (r * 53 + 7) % P2_KEYS; }

/* Computations key i must have seen: once, and once more after each invalidation of it. */
static int p2_expected(int i) {
  int n = 1;
  for (int r = 0; r < P2_PROCS; ++r) n += p2_inval_key(r) == i;
  return n;
}

static void p2_child(int me, const char *url, const httpcache_options *opts, int inherited) {
  pthread_t tid[P2_THREADS];
  if (!inherited) {
    p2_cache = open_quiet(url, "p2", opts);
    if (!p2_cache) _exit(10);
  }
  if (arrive_and_wait(&sh2->ready, P2_PROCS, 10000)) _exit(11);
  for (int t = 0; t < P2_THREADS; ++t)
    if (pthread_create(&tid[t], NULL, p2_thread, (void *)(intptr_t)(me * P2_THREADS + t))) _exit(12);
  for (int t = 0; t < P2_THREADS; ++t) pthread_join(tid[t], NULL);
  if (arrive_and_wait(&sh2->phase[0], P2_PROCS, 20000)) _exit(13);
  /* Each process in turn invalidates a key; the others must miss it as soon as the call returned. */
  for (int r = 0; r < P2_PROCS; ++r) {
    char key[32];
    int i = p2_inval_key(r);
    p2_key(key, sizeof key, i);
    if (me == r) {
      size_t deleted = 0;
      const void *keys[] = {key};
      size_t lens[] = {strlen(key)};
      if (httpcache_cache_invalidate(&deleted, p2_cache, keys, lens, 1) != HTTPCACHE_OK || deleted != 1)
        __atomic_add_fetch(&sh2->failed, 1, __ATOMIC_RELAXED);
      __atomic_store_n(&sh2->invalidated[r], 1, __ATOMIC_RELEASE);
    } else if (wait_flag(&sh2->invalidated[r], 10000)) {
      __atomic_add_fetch(&sh2->sync_timeouts, 1, __ATOMIC_RELAXED);
    }
    if (get_rc(p2_cache, key) != HTTPCACHE_ENOTFOUND) __atomic_add_fetch(&sh2->stale_reads, 1, __ATOMIC_RELAXED);
    if (arrive_and_wait(&sh2->phase[1 + 2 * r], P2_PROCS, 10000)) _exit(14);
    /* every process asks again at once: computed once more in all */
    p2_call(i);
    if (arrive_and_wait(&sh2->phase[2 + 2 * r], P2_PROCS, 10000)) _exit(15);
  }
  httpcache_cache_free(p2_cache); /* the inherited handle too: it must not wait for anything */
  _exit(0);
}

static void run_processes(fixture *f, int inherited) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  pid_t pids[P2_PROCS];
  int i;
  int64_t started = test_now_ms();
  sh2 = shared_alloc(sizeof *sh2);
  opts.lock_ttl_ms = 10000; /* the cross-process stampede lock: callers in other processes wait */
  opts.singleflight_wait_ms = 10000;
  p2_cache = NULL;
  if (inherited) {
    /* Opened and used before fork(): each child's first call opens the store anew. */
    p2_cache = open_or_fail(f->url, "p2", &opts);
    set_own_value(p2_cache, "warm");
    expect_own_value(p2_cache, "warm");
  }
  for (i = 0; i < P2_PROCS; ++i) {
    pids[i] = fork_child();
    if (pids[i] == 0) p2_child(i, f->url, &opts, inherited);
  }
  for (i = 0; i < P2_PROCS; ++i) assert_exited_ok(pids[i], 60000);
  printf("%d processes x %d threads, %s handle: %lld ms\n", P2_PROCS, P2_THREADS,
         inherited ? "an inherited" : "their own", (long long)(test_now_ms() - started));
  assert_int_equal(sh2->sync_timeouts, 0);
  assert_int_equal(sh2->failed, 0);
  assert_int_equal(sh2->wrong, 0);
  assert_int_equal(sh2->stale_reads, 0);
  assert_int_equal(sh2->uncached, 0);
  for (i = 0; i < P2_KEYS; ++i)
    if (sh2->computed[i] != p2_expected(i))
      fail_msg("key %d computed %d times across processes, not %d", i, sh2->computed[i], p2_expected(i));
  /* The parent reads what the children stored (through its own handle, still working), all hits. */
  if (!p2_cache) p2_cache = open_or_fail(f->url, "p2", &opts);
  for (i = 0; i < P2_KEYS; ++i) {
    char key[32];
    p2_key(key, sizeof key, i);
    expect_own_value(p2_cache, key);
  }
  for (i = 0; i < P2_KEYS; ++i) p2_call(i);
  for (i = 0; i < P2_KEYS; ++i) assert_int_equal(sh2->computed[i], p2_expected(i)); /* all hits: nothing recomputed */
  assert_int_equal(sh2->wrong + sh2->failed, 0);
  if (inherited) expect_own_value(p2_cache, "warm");
  httpcache_cache_free(p2_cache);
  p2_cache = NULL;
  munmap(sh2, sizeof *sh2);
}

/** Each of 4 forked processes opens its own handle; 8 threads each. */
static void test_lmdb_processes_own_handles(void **state) { run_processes(*state, 0); }

/** One handle opened (and used) in the parent, used by 4 forked children with 8 threads each. */
static void test_lmdb_processes_inherited_handle(void **state) { run_processes(*state, 1); }

/* ======================================================================== 3. writers SIGKILLed */

#define T3_ROUNDS 100
#define T3_KEYS 300

typedef struct {
  int started;
  int last_done; /* index of the writer's last set that returned OK */
  int errors;
  char message[256];
} shared3;

static uint32_t fnv1a(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ (unsigned char)p[i]) * 16777619u;
  return h;
}

static void t3_key(char *out, size_t cap, int j) { snprintf(out, cap, "t3-%03d", j); }

/* key=<key>;round=<r>;i=<i>;len=<n>;<filler><8 hex digits: FNV-1a of all before> */
static size_t t3_value(char *out, size_t cap, int round, int i) {
  char key[32];
  uint32_t r = test_mix32((uint32_t)round * 1000003u + (uint32_t)i);
  size_t len = 64 + r % 6000, head, k; /* some over a page: LMDB overflow pages */
  t3_key(key, sizeof key, i % T3_KEYS);
  if (len + 1 > cap) len = cap - 1;
  head = (size_t)snprintf(out, cap, "key=%s;round=%d;i=%d;len=%zu;", key, round, i, len);
  for (k = head; k < len - 8; ++k) {
    r = r * 1664525u + 1013904223u;
    out[k] = (char)('!' + (r >> 24) % 90);
  }
  snprintf(out + len - 8, 9, "%08x", fnv1a(out, len - 8));
  return len;
}

/* Parses and verifies a value read at key j: 0 when exactly right, with its round and index. */
static int t3_parse(const char *v, size_t n, int j, int *round, int *i) {
  char key[32], expected_key[32], buf[8192], sum[9];
  size_t len;
  if (n < 20 || n >= sizeof buf) return -1;
  memcpy(buf, v, n);
  buf[n] = '\0';
  if (sscanf(buf, "key=%31[^;];round=%d;i=%d;len=%zu;", key, round, i, &len) != 4) return -2;
  t3_key(expected_key, sizeof expected_key, j);
  if (strcmp(key, expected_key) != 0) return -3;
  if (len != n) return -4;
  snprintf(sum, sizeof sum, "%08x", fnv1a(buf, n - 8));
  if (memcmp(buf + n - 8, sum, 8) != 0) return -5;
  if (*i % T3_KEYS != j) return -6;
  return 0;
}

static void t3_writer(shared3 *sh, httpcache_cache *inherited, const char *url, int round) {
  static char value[8192];
  httpcache_cache *c = inherited ? inherited : open_quiet(url, "t3", NULL);
  if (!c) {
    snprintf(sh->message, sizeof sh->message, "open: %s", httpcache_error_last()->message);
    __atomic_store_n(&sh->errors, 1, __ATOMIC_RELEASE);
    _exit(1);
  }
  __atomic_store_n(&sh->started, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 1000000; ++i) {
    char key[32];
    size_t len = t3_value(value, sizeof value, round, i);
    int rc;
    t3_key(key, sizeof key, i % T3_KEYS);
    rc = httpcache_cache_set(NULL, c, key, strlen(key), value, len, &one_hour);
    if (rc != HTTPCACHE_OK) {
      snprintf(sh->message, sizeof sh->message, "set %d: %d %s", i, rc, httpcache_error_last()->message);
      __atomic_add_fetch(&sh->errors, 1, __ATOMIC_RELEASE);
      _exit(1);
    }
    __atomic_store_n(&sh->last_done, i, __ATOMIC_RELEASE);
  }
  _exit(0);
}

/** 100 rounds: a writer (its own handle, or the parent's inherited one) writing entries that carry
 *  their key and a checksum is SIGKILLed 0-20 ms after it started; the parent then reads every key:
 *  each is missing or exactly right (never torn, never another key's or from the future), every
 *  write the writer saw return is there (or a later one of the same key), no entry ever goes back
 *  to an older write, and nothing once stored is lost. Every tenth round the parent reopens. */
static void test_lmdb_sigkill_writers(void **state) {
  fixture *f = *state;
  shared3 *sh = shared_alloc(sizeof *sh);
  httpcache_cache *pc = open_or_fail(f->url, "t3", NULL);
  static int ever[T3_KEYS], seen_round[T3_KEYS], seen_i[T3_KEYS];
  int round, committed = 0, rounds_with_writes = 0;
  int64_t started = test_now_ms();
  unsigned rs = seed;
  memset(ever, 0, sizeof ever);
  for (int j = 0; j < T3_KEYS; ++j) seen_round[j] = seen_i[j] = -1;
  for (round = 0; round < T3_ROUNDS; ++round) {
    pid_t pid;
    int status, last, j;
    useconds_t delay = (useconds_t)(rand_r(&rs) % 20001);
    sh->started = 0;
    sh->last_done = -1;
    pid = fork_child();
    if (pid == 0) t3_writer(sh, round % 2 ? pc : NULL, f->url, round);
    if (wait_flag(&sh->started, 10000)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("round %d: the writer never started: %s", round, sh->message);
    }
    usleep(delay);
    kill(pid, SIGKILL);
    status = wait_child(pid, 10000);
    if (__atomic_load_n(&sh->errors, __ATOMIC_ACQUIRE)) fail_msg("round %d: the writer failed: %s", round, sh->message);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    last = __atomic_load_n(&sh->last_done, __ATOMIC_ACQUIRE);
    committed += last + 1;
    if (last >= 0) ++rounds_with_writes;
    if (round % 10 == 9) { /* the first opener after crashes */
      httpcache_cache_free(pc);
      pc = open_or_fail(f->url, "t3", NULL);
    }
    for (j = 0; j < T3_KEYS; ++j) {
      char key[32];
      httpcache_buf v = HTTPCACHE_BUF_INIT;
      int rc, vr = -1, vi = -1, bad;
      t3_key(key, sizeof key, j);
      rc = httpcache_cache_get(&v, NULL, pc, key, strlen(key));
      if (rc == HTTPCACHE_ENOTFOUND) {
        if (ever[j] || j <= last) fail_msg("round %d: %s is lost (last committed write %d)", round, key, last);
        continue;
      }
      if (rc != HTTPCACHE_OK) fail_msg("round %d: get %s: %d %s", round, key, rc, httpcache_error_last()->message);
      bad = t3_parse(v.ptr, v.size, j, &vr, &vi);
      if (bad) fail_msg("round %d: %s holds a torn or foreign value (%d): '%.80s'", round, key, bad, v.ptr);
      httpcache_buf_dispose(&v);
      if (vr > round || (vr == round && vi > last + 1))
        fail_msg("round %d: %s holds round %d write %d, never written (last committed %d)", round, key, vr, vi, last);
      if (vr < seen_round[j] || (vr == seen_round[j] && vi < seen_i[j]))
        fail_msg("round %d: %s went back from round %d write %d to round %d write %d", round, key, seen_round[j],
                 seen_i[j], vr, vi);
      if (j <= last) { /* this round committed at least one write of key j */
        int newest = j + T3_KEYS * ((last - j) / T3_KEYS);
        if (vr != round || vi < newest)
          fail_msg("round %d: %s holds round %d write %d, not the committed write %d", round, key, vr, vi, newest);
      }
      seen_round[j] = vr;
      seen_i[j] = vi;
      ever[j] = 1;
    }
  }
  /* The write lock is not left held by a dead writer: a last writer completes normally. */
  {
    pid_t pid = fork_child();
    if (pid == 0) {
      httpcache_cache *c = open_quiet(f->url, "t3", NULL);
      if (!c) _exit(2);
      for (int i = 0; i < 50; ++i) {
        char key[32];
        snprintf(key, sizeof key, "final-%d", i);
        char value[512];
        size_t len = value_of(value, sizeof value, key);
        if (httpcache_cache_set(NULL, c, key, strlen(key), value, len, &one_hour) != HTTPCACHE_OK) _exit(3);
      }
      httpcache_cache_free(c);
      _exit(0);
    }
    assert_exited_ok(pid, 10000);
    for (int i = 0; i < 50; ++i) {
      char key[32];
      snprintf(key, sizeof key, "final-%d", i);
      expect_own_value(pc, key);
    }
    set_own_value(pc, "parent-after");
    expect_own_value(pc, "parent-after");
  }
  printf("%d rounds: %d writes reported committed, %d rounds with at least one; %lld ms\n", T3_ROUNDS, committed,
         rounds_with_writes, (long long)(test_now_ms() - started));
  assert_true(rounds_with_writes >= T3_ROUNDS / 2); /* the kills did land mid-work */
  httpcache_cache_free(pc);
  munmap(sh, sizeof *sh);
}

/* ======================================================================== 4. max_bytes */

static size_t sized_value(char *out, size_t size, const char *key) {
  size_t n = (size_t)snprintf(out, size + 1, "%s|", key);
  for (size_t i = n; i < size; ++i) out[i] = (char)('A' + (i * 31 + n) % 26);
  return size;
}

static int holds_sized(httpcache_cache *c, const char *key, size_t size) {
  char expected[2048];
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get(&v, NULL, c, key, strlen(key)), ok;
  if (rc == HTTPCACHE_ENOTFOUND) return 0;
  if (rc != HTTPCACHE_OK) fail_msg("get %s: %d %s", key, rc, httpcache_error_last()->message);
  sized_value(expected, size, key);
  ok = v.size == size && memcmp(v.ptr, expected, size) == 0;
  httpcache_buf_dispose(&v);
  if (!ok) fail_msg("%s holds a wrong value", key);
  return 1;
}

static off_t data_size(const fixture *f) {
  char path[600];
  struct stat st;
  snprintf(path, sizeof path, "%s/data.mdb", f->dir);
  assert_int_equal(stat(path, &st), 0);
  return st.st_size;
}

/** max_bytes=1 MiB, 20 MiB written in 1 KiB values: no write fails, data.mdb never grows past the
 *  map (2 * max_bytes + 32 MiB), the newest entries are there, the oldest evicted, and no more
 *  entries live than 1 MiB can hold. */
static void test_lmdb_fill_past_limit(void **state) {
  fixture *f = *state;
  enum { N = 20480, SIZE = 1024 };
  char url[800], key[32], value[SIZE + 1];
  httpcache_cache *c = open_or_fail(url_with(f, "max_bytes=1048576", url, sizeof url), "fill", NULL);
  const off_t bound = (off_t)(2 * MIB + 32 * MIB + 64 * 1024);
  off_t largest = 0;
  int i, present = 0, early = 0, recent = 0;
  int64_t started = test_now_ms();
  for (i = 0; i < N; ++i) {
    int rc;
    snprintf(key, sizeof key, "fill-%06d", i);
    sized_value(value, SIZE, key);
    rc = httpcache_cache_set(NULL, c, key, strlen(key), value, SIZE, &one_hour);
    if (rc != HTTPCACHE_OK) fail_msg("set %d: %d %s", i, rc, httpcache_error_last()->message);
    if (i % 1024 == 0) {
      off_t s = data_size(f);
      if (s > largest) largest = s;
      if (s > bound) fail_msg("data.mdb is %lld bytes after %d writes, over %lld", (long long)s, i, (long long)bound);
    }
  }
  if (data_size(f) > largest) largest = data_size(f);
  assert_true(largest <= bound);
  for (i = 0; i < N; ++i) {
    snprintf(key, sizeof key, "fill-%06d", i);
    if (holds_sized(c, key, SIZE)) {
      ++present;
      if (i < N / 2) ++early;
      if (i >= N - 200) ++recent;
    }
  }
  printf("20 MiB into max_bytes=1 MiB: %d entries of 1 KiB live, data.mdb at most %lld bytes; %lld ms\n", present,
         (long long)largest, (long long)(test_now_ms() - started));
  assert_int_equal(recent, 200);
  assert_int_equal(early, 0);
  assert_true(present <= (int)(MIB / SIZE)); /* the limit counts the values at least */
  /* A value over max_bytes/8 (with its key) is not stored, and the key's older value goes too;
   * one just under is stored. */
  {
    static char big[200 * 1024];
    httpcache_buf v = HTTPCACHE_BUF_INIT;
    int rc;
    assert_int_equal(httpcache_cache_set(NULL, c, "huge", 4, "small", 5, &one_hour), HTTPCACHE_OK);
    sized_value(big, sizeof big, "huge");
    rc = httpcache_cache_set(NULL, c, "huge", 4, big, sizeof big, &one_hour);
    printf("a 200 KiB value into max_bytes=1 MiB: set %d\n", rc);
    assert_int_equal(httpcache_cache_get(&v, NULL, c, "huge", 4), HTTPCACHE_ENOTFOUND);
    sized_value(big, 120 * 1024, "under");
    assert_int_equal(httpcache_cache_set(NULL, c, "under", 5, big, 120 * 1024, &one_hour), HTTPCACHE_OK);
    assert_int_equal(httpcache_cache_get(&v, NULL, c, "under", 5), HTTPCACHE_OK);
    assert_int_equal(v.size, 120 * 1024);
    assert_memory_equal(v.ptr, big, 120 * 1024);
    httpcache_buf_dispose(&v);
  }
  httpcache_cache_free(c);
}

/* Writes lru-<from>..lru-<to - 1>, 1 KiB each. */
static void lru_write(httpcache_cache *c, int from, int to) {
  char key[32], value[1025];
  for (int i = from; i < to; ++i) {
    snprintf(key, sizeof key, "lru-%05d", i);
    sized_value(value, 1024, key);
    if (httpcache_cache_set(NULL, c, key, strlen(key), value, 1024, &one_hour) != HTTPCACHE_OK)
      fail_msg("set %s: %s", key, httpcache_error_last()->message);
  }
}

static int lru_alive(httpcache_cache *c, int i) {
  char key[32];
  snprintf(key, sizeof key, "lru-%05d", i);
  return holds_sized(c, key, 1024);
}

/** Approximate LRU: of 400 entries (about 460 fit in max_bytes=1 MiB), the first 200 are read
 *  again and again, in a new random order each time, while 1,500 more are written, 25 between
 *  rounds of reads (a sampled hit in the older half is re-stamped by this process's next write):
 *  nearly all of the read ones survive, none of the 200 unread ones of the same age. */
static void test_lmdb_lru_touch(void **state) {
  fixture *f = *state;
  enum { N0 = 400, HOT = 200, WRITES = 25, READS = 16, ROUNDS = 60 };
  char url[800], key[32];
  httpcache_cache *c = open_or_fail(url_with(f, "max_bytes=1048576", url, sizeof url), "lru", NULL);
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int order[HOT], i, r, k, next = N0, hot_alive = 0, cold_alive = 0, new_alive = 0;
  unsigned rs = seed;
  lru_write(c, 0, N0);
  for (i = 0; i < N0; ++i) assert_true(lru_alive(c, i)); /* nothing evicted yet: 400 KiB of values */
  for (i = 0; i < HOT; ++i) order[i] = i;
  for (r = 0; r < ROUNDS; ++r) {
    for (k = 0; k < READS; ++k) {
      for (i = HOT - 1; i > 0; --i) {
        int j = (int)(rand_r(&rs) % (unsigned)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      for (i = 0; i < HOT; ++i) {
        snprintf(key, sizeof key, "lru-%05d", order[i]);
        httpcache_cache_get(&v, NULL, c, key, strlen(key));
      }
    }
    lru_write(c, next, next + WRITES);
    next += WRITES;
  }
  httpcache_buf_dispose(&v);
  for (i = 0; i < N0; ++i)
    if (lru_alive(c, i)) ++*(i < HOT ? &hot_alive : &cold_alive);
  for (i = next - 100; i < next; ++i) new_alive += lru_alive(c, i);
  printf("approximate LRU: %d of %d read entries survived, %d of %d unread, %d of the 100 newest\n", hot_alive, HOT,
         cold_alive, N0 - HOT, new_alive);
  assert_int_equal(new_alive, 100);
  assert_true(hot_alive >= HOT * 9 / 10);
  assert_int_equal(cold_alive, 0);
  httpcache_cache_free(c);
}

/** The hottest keys of a process survive however they are read: here each "request" of one thread
 *  reads the same 4 keys in the same order (as a handler reading its session, user, flags and
 *  config would), 16 requests between batches of 25 writes. Every one of the 4 is read far more
 *  recently than any other old entry, so each must survive; the 396 unread entries of their age
 *  must not. (Recency is sampled on one hit in 8 per thread: a fixed pattern of an even number of
 *  reads samples the same positions every time.) */
static void test_lmdb_lru_fixed_read_pattern(void **state) {
  fixture *f = *state;
  enum { N0 = 400, HOT = 4, WRITES = 25, REQUESTS = 16, ROUNDS = 60 };
  char url[800], key[32];
  httpcache_cache *c = open_or_fail(url_with(f, "max_bytes=1048576", url, sizeof url), "lru", NULL);
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int i, r, k, next = N0, hot_alive = 0, cold_alive = 0;
  char alive[HOT + 1];
  lru_write(c, 0, N0);
  for (r = 0; r < ROUNDS; ++r) {
    for (k = 0; k < REQUESTS; ++k)
      for (i = 0; i < HOT; ++i) {
        snprintf(key, sizeof key, "lru-%05d", i);
        httpcache_cache_get(&v, NULL, c, key, strlen(key)); /* a miss once evicted */
      }
    lru_write(c, next, next + WRITES);
    next += WRITES;
  }
  httpcache_buf_dispose(&v);
  for (i = 0; i < N0; ++i) {
    int a = lru_alive(c, i);
    if (i < HOT) alive[i] = a ? '+' : '-';
    if (a) ++*(i < HOT ? &hot_alive : &cold_alive);
  }
  alive[HOT] = '\0';
  printf("fixed pattern of %d reads per request: %d of them survived (%s), %d of %d unread\n", HOT, hot_alive, alive,
         cold_alive, N0 - HOT);
  assert_int_equal(cold_alive, 0);
  assert_int_equal(hot_alive, HOT);
  httpcache_cache_free(c);
}

/* ======================================================================== 5. crashes */

typedef struct {
  int started, last_done, errors;
  int reader_pid, reader_ready;
  int present, listed, dead, rc;
} shared5;

static size_t crash_value(char *out, size_t cap, int round, int i) {
  char key[32];
  snprintf(key, sizeof key, "crash-%d-%d", round, i);
  return value_of(out, cap, key);
}

/* A raw liblmdb process that dies holding a read transaction (its reader slot stays taken). */
static void dead_reader(shared5 *sh, const char *dir, uint64_t max_bytes) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  if (raw_open(&env, dir, max_bytes) || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) _exit(1);
  sh->reader_pid = getpid();
  __atomic_store_n(&sh->reader_ready, 1, __ATOMIC_RELEASE);
  raise(SIGKILL);
  _exit(2);
}

/* A raw liblmdb checker: is pid's slot listed; with reclaim, then how many dead slots
 * mdb_reader_check clears (without it nothing is changed: the slot stays for the library). */
static void list_readers(shared5 *sh, const char *dir, uint64_t max_bytes, int pid, int reclaim) {
  MDB_env *env = NULL;
  reader_pids r = {{0}, 0};
  int dead = -1;
  if ((sh->rc = raw_open(&env, dir, max_bytes))) _exit(1);
  if ((sh->rc = mdb_reader_list(env, collect_reader, &r)) < 0) _exit(2);
  sh->listed = r.n;
  sh->present = has_pid(&r, pid);
  if (reclaim && (sh->rc = mdb_reader_check(env, &dead))) _exit(3);
  sh->dead = dead;
  mdb_env_close(env);
  _exit(0);
}

static void run_dead_reader(fixture *f, shared5 *sh, uint64_t max_bytes) {
  pid_t pid;
  int status;
  sh->reader_ready = 0;
  pid = fork_child();
  if (pid == 0) dead_reader(sh, f->dir, max_bytes);
  status = wait_child(pid, 10000);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  assert_int_equal(sh->reader_ready, 1);
}

/* Lists the readers in a raw checker process; sh->present says whether pid holds a slot, sh->dead
 * (with reclaim) how many dead processes' slots were left. */
static void check_readers(fixture *f, shared5 *sh, uint64_t max_bytes, int pid, int reclaim) {
  pid_t checker;
  sh->present = sh->listed = -1;
  sh->dead = -1;
  checker = fork_child();
  if (checker == 0) list_readers(sh, f->dir, max_bytes, pid, reclaim);
  assert_exited_ok(checker, 10000);
}

/** A writer SIGKILLed mid-work: a new handle (the store's first opener since) reads every write it
 *  reported. Then with the store held open by this process, a raw liblmdb reader dies holding a
 *  read transaction: its slot stays (listed by mdb_reader_list) until a process opens the store
 *  through the library, which clears it; another such dead reader pins old pages while 48 MiB go
 *  into max_bytes=1 MiB (a map of 34 MiB): every write succeeds (a full map drops dead readers and
 *  evicts), and that slot is gone too. Last, a store whose boot_id names another boot (an OS
 *  crash since: unsynced pages may be missing) starts empty. */
static void test_lmdb_crash_and_stale_readers(void **state) {
  fixture *f = *state;
  shared5 *sh = shared_alloc(sizeof *sh);
  char url[800], value[512], key[48];
  const uint64_t max_bytes = MIB;
  httpcache_cache *held;
  unsigned rs = seed ^ 0x5a5a5a5au;
  int round, i, dead_pid;
  url_with(f, "max_bytes=1048576", url, sizeof url);

  for (round = 0; round < 3; ++round) {
    pid_t pid;
    int status, last;
    httpcache_cache *c;
    httpcache_buf v = HTTPCACHE_BUF_INIT;
    sh->started = 0;
    sh->last_done = -1;
    pid = fork_child();
    if (pid == 0) {
      httpcache_cache *w = open_quiet(url, "crash", NULL);
      if (!w) _exit(1);
      __atomic_store_n(&sh->started, 1, __ATOMIC_RELEASE);
      for (int n = 0; n < 1000000; ++n) {
        size_t len = crash_value(value, sizeof value, round, n);
        snprintf(key, sizeof key, "crash-%d-%d", round, n % 400);
        if (httpcache_cache_set(NULL, w, key, strlen(key), value, len, &one_hour) != HTTPCACHE_OK) {
          __atomic_add_fetch(&sh->errors, 1, __ATOMIC_RELEASE);
          _exit(1);
        }
        __atomic_store_n(&sh->last_done, n, __ATOMIC_RELEASE);
      }
      _exit(0);
    }
    if (wait_flag(&sh->started, 10000)) fail_msg("the writer never started");
    usleep(10000 + (useconds_t)(rand_r(&rs) % 20000));
    kill(pid, SIGKILL);
    status = wait_child(pid, 10000);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(sh->errors, 0);
    last = sh->last_done;
    assert_true(last >= 0);
    c = open_or_fail(url, "crash", NULL);
    for (i = 0; i < 400; ++i) {
      /* key i holds its newest write: at most last + 1 (in flight when killed), at least the newest committed */
      int newest = last >= i ? i + 400 * ((last - i) / 400) : -1, rc;
      snprintf(key, sizeof key, "crash-%d-%d", round, i);
      rc = httpcache_cache_get(&v, NULL, c, key, strlen(key));
      if (rc == HTTPCACHE_ENOTFOUND) {
        if (newest >= 0) fail_msg("round %d: %s (committed write %d) is lost", round, key, newest);
        continue;
      }
      assert_int_equal(rc, HTTPCACHE_OK);
      {
        int ok = 0;
        for (int n = newest < 0 ? i : newest; n <= last + 1 && !ok; n += 400) {
          size_t len = crash_value(value, sizeof value, round, n);
          ok = v.size == len && memcmp(v.ptr, value, len) == 0;
        }
        if (!ok) fail_msg("round %d: %s holds '%.60s', not its newest committed write %d", round, key, v.ptr, newest);
      }
    }
    httpcache_buf_dispose(&v);
    set_own_value(c, "after-crash");
    expect_own_value(c, "after-crash");
    httpcache_cache_free(c);
  }

  /* This process holds the store open, so the lock file's reader table outlives each process. */
  held = open_or_fail(url, "crash", NULL);
  run_dead_reader(f, sh, max_bytes);
  dead_pid = sh->reader_pid;
  check_readers(f, sh, max_bytes, dead_pid, 0);
  printf("dead reader %d: listed %d (of %d slots) before a new opener\n", dead_pid, sh->present, sh->listed);
  assert_int_equal(sh->present, 1); /* the slot outlived its process */
  /* A process opening the store through the library (its first call opens the environment). */
  {
    pid_t pid = fork_child();
    if (pid == 0) {
      httpcache_cache *c = open_quiet(url, "crash", NULL);
      if (!c || get_rc(c, "after-crash") != HTTPCACHE_OK) _exit(1);
      httpcache_cache_free(c);
      httpcache_cache_free(held); /* the inherited one too: the environment closes, leaving no slot */
      _exit(0);
    }
    assert_exited_ok(pid, 10000);
  }
  check_readers(f, sh, max_bytes, dead_pid, 1);
  printf("after a new opener: listed %d, %d dead slots left\n", sh->present, sh->dead);
  assert_int_equal(sh->present, 0);
  assert_int_equal(sh->dead, 0);

  /* Another dead reader pins the snapshot of now; 48 MiB of writes must still all succeed. */
  run_dead_reader(f, sh, max_bytes);
  dead_pid = sh->reader_pid;
  check_readers(f, sh, max_bytes, dead_pid, 0);
  assert_int_equal(sh->present, 1);
  {
    static char big[40 * 1024];
    enum { BIG = 40 * 1024, NBIG = 1200 };
    for (i = 0; i < NBIG; ++i) {
      int rc;
      snprintf(key, sizeof key, "big-%05d", i);
      sized_value(big, BIG, key);
      rc = httpcache_cache_set(NULL, held, key, strlen(key), big, BIG, &one_hour);
      if (rc != HTTPCACHE_OK)
        fail_msg("write %d of 40 KiB with a dead reader pinning old pages: %d %s", i, rc, httpcache_error_last()->message);
    }
    for (i = NBIG - 5; i < NBIG; ++i) {
      httpcache_buf v = HTTPCACHE_BUF_INIT;
      snprintf(key, sizeof key, "big-%05d", i);
      assert_int_equal(httpcache_cache_get(&v, NULL, held, key, strlen(key)), HTTPCACHE_OK);
      sized_value(big, BIG, key);
      assert_int_equal(v.size, BIG);
      assert_memory_equal(v.ptr, big, BIG);
      httpcache_buf_dispose(&v);
    }
    printf("48 MiB written past a dead reader; data.mdb is %lld bytes\n", (long long)data_size(f));
    assert_true(data_size(f) <= (off_t)(2 * max_bytes + 32 * MIB + 64 * 1024));
  }
  check_readers(f, sh, max_bytes, dead_pid, 1);
  assert_int_equal(sh->present, 0); /* the full map dropped it */
  assert_int_equal(sh->dead, 0);
  set_own_value(held, "before-boot");
  httpcache_cache_free(held);

  /* After an OS crash (a store last opened in another boot): it starts empty, and records this boot. */
  {
    char boot[128] = "", recorded[128] = "", path[700];
    FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "r");
    int fd;
    assert_non_null(fp);
    assert_non_null(fgets(boot, sizeof boot, fp));
    fclose(fp);
    snprintf(path, sizeof path, "%s/boot_id", f->dir);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "another-boot\n", 13), 13);
    close(fd);
    held = open_or_fail(url, "crash", NULL);
    assert_int_equal(get_rc(held, "before-boot"), HTTPCACHE_ENOTFOUND);
    set_own_value(held, "new-boot");
    expect_own_value(held, "new-boot");
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(recorded, sizeof recorded, fp));
    fclose(fp);
    assert_string_equal(recorded, boot);
    httpcache_cache_free(held);
    held = open_or_fail(url, "crash", NULL); /* the same boot: kept */
    expect_own_value(held, "new-boot");
    httpcache_cache_free(held);
  }
  munmap(sh, sizeof *sh);
}

/* ======================================================================== 6. namespaces, long keys */

/* A raw liblmdb process swapping the records of the two hashed store keys ('h' + SHA-256) of the
 *  entries table: each now carries the other key. */
static void swap_hashed_records(const char *dir, int *found) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi dbi;
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  char keys[2][64];
  size_t klen[2];
  char *vals[2] = {NULL, NULL};
  size_t vlen[2];
  int n = 0, rc;
  if (raw_open(&env, dir, 256 * MIB) || mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "entries", 0, &dbi) ||
      mdb_cursor_open(txn, dbi, &cur))
    _exit(1);
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < 1 || ((const char *)k.mv_data)[0] != 'h') continue;
    if (n == 2 || k.mv_size > sizeof keys[0]) _exit(2);
    memcpy(keys[n], k.mv_data, k.mv_size);
    klen[n] = k.mv_size;
    vals[n] = malloc(v.mv_size);
    memcpy(vals[n], v.mv_data, v.mv_size);
    vlen[n] = v.mv_size;
    ++n;
  }
  mdb_cursor_close(cur);
  *found = n;
  if (n != 2) _exit(3);
  for (int i = 0; i < 2; ++i) {
    MDB_val kk = {klen[i], keys[i]}, vv = {vlen[1 - i], vals[1 - i]};
    if (mdb_put(txn, dbi, &kk, &vv, 0)) _exit(4);
  }
  if (mdb_txn_commit(txn)) _exit(5);
  mdb_env_close(env);
  _exit(0);
}

/** Two namespaces in one store never see each other's keys; keys past 400 bytes (with the
 *  namespace: stored under their SHA-256) work, never answer for another key, and a record moved
 *  under another long key's store key (raw liblmdb) reads as a miss, not as that key's value. */
static void test_lmdb_namespaces_and_long_keys(void **state) {
  fixture *f = *state;
  httpcache_cache *a = open_or_fail(f->url, "alpha", NULL), *b = open_or_fail(f->url, "beta", NULL);
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  static char long1[1000], long2[1000], edge_direct[400], edge_hashed[400];
  compute_state cs = {0, "computed-long"};
  httpcache_outcome outcome = 0;
  size_t deleted = 0;
  int *found = shared_alloc(sizeof(int));

  assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, "from-alpha", 10, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&v, NULL, b, "k", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_set(NULL, b, "k", 1, "from-beta", 9, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&v, NULL, a, "k", 1), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "from-alpha");
  assert_int_equal(httpcache_cache_get(&v, NULL, b, "k", 1), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "from-beta");
  {
    const void *keys[] = {"k"};
    size_t lens[] = {1};
    assert_int_equal(httpcache_cache_invalidate(&deleted, a, keys, lens, 1), HTTPCACHE_OK);
    assert_int_equal(deleted, 1);
  }
  assert_int_equal(httpcache_cache_get(&v, NULL, a, "k", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&v, NULL, b, "k", 1), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "from-beta");
  /* "alpha:x" in beta is a key of its own, not alpha's x */
  assert_int_equal(httpcache_cache_set(NULL, a, "x", 1, "ax", 2, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&v, NULL, b, "alpha:x", 7), HTTPCACHE_ENOTFOUND);

  /* Long keys: two of 1000 bytes differing in their last byte; with "alpha:" (6 bytes) a key of
   * 394 bytes is stored directly (400), one of 395 hashed (401). */
  memset(long1, 'L', sizeof long1);
  memcpy(long2, long1, sizeof long2);
  long2[sizeof long2 - 1] = 'M';
  memset(edge_direct, 'e', sizeof edge_direct);
  memset(edge_hashed, 'e', sizeof edge_hashed);
  assert_int_equal(httpcache_cache_set(NULL, a, long1, sizeof long1, "long-one", 8, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long2, sizeof long2), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&v, NULL, b, long1, sizeof long1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_set(NULL, a, long2, sizeof long2, "long-two", 8, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long1, sizeof long1), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "long-one");
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long2, sizeof long2), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "long-two");
  assert_int_equal(httpcache_cache_set(NULL, a, edge_direct, 394, "edge-394", 8, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, a, edge_hashed, 395, "edge-395", 8, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&v, NULL, a, edge_direct, 394), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "edge-394");
  assert_int_equal(httpcache_cache_get(&v, NULL, a, edge_hashed, 395), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "edge-395");
  assert_int_equal(httpcache_cache_get(&v, NULL, a, edge_hashed, 396), HTTPCACHE_ENOTFOUND);
  /* get_or_compute and invalidate on a long key (in beta) */
  assert_int_equal(httpcache_cache_get_or_compute(&v, NULL, &outcome, b, long1, sizeof long1, &one_hour, compute, &cs),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(httpcache_cache_get_or_compute(&v, NULL, &outcome, b, long1, sizeof long1, &one_hour, compute, &cs),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  assert_string_equal(v.ptr, "computed-long");
  assert_int_equal(cs.calls, 1);
  {
    const void *keys[] = {long1};
    size_t lens[] = {sizeof long1};
    assert_int_equal(httpcache_cache_invalidate(&deleted, b, keys, lens, 1), HTTPCACHE_OK);
    assert_int_equal(deleted, 1);
  }
  assert_int_equal(httpcache_cache_get(&v, NULL, b, long1, sizeof long1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long1, sizeof long1), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "long-one");

  /* Now exactly two hashed records (alpha's long1 and long2, plus edge-395: three). Drop edge-395
   * so a raw process can swap the two long ones. */
  {
    const void *keys[] = {edge_hashed};
    size_t lens[] = {395};
    assert_int_equal(httpcache_cache_invalidate(&deleted, a, keys, lens, 1), HTTPCACHE_OK);
    assert_int_equal(deleted, 1);
  }
  {
    pid_t pid = fork_child();
    if (pid == 0) swap_hashed_records(f->dir, found);
    assert_exited_ok(pid, 10000);
    assert_int_equal(*found, 2);
  }
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long1, sizeof long1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long2, sizeof long2), HTTPCACHE_ENOTFOUND);
  /* and they can be written again */
  assert_int_equal(httpcache_cache_set(NULL, a, long1, sizeof long1, "long-one-again", 14, &one_hour), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long1, sizeof long1), HTTPCACHE_OK);
  assert_string_equal(v.ptr, "long-one-again");
  assert_int_equal(httpcache_cache_get(&v, NULL, a, long2, sizeof long2), HTTPCACHE_ENOTFOUND);
  httpcache_buf_dispose(&v);
  httpcache_cache_free(a);
  httpcache_cache_free(b);
  munmap(found, sizeof(int));
}

/* ======================================================================== 7. bad input */

static void expect_open_fails(const char *url, int code, const char *needle1, const char *needle2) {
  httpcache_cache *c = (httpcache_cache *)(uintptr_t)1;
  int rc = httpcache_cache_open(&c, url, "bad", NULL, NULL);
  const httpcache_error *e = httpcache_error_last();
  printf("%s -> %d: %s\n", url, rc, e->message);
  if (rc != code) fail_msg("open %s: %d, expected %d (%s)", url, rc, code, e->message);
  assert_null(c);
  assert_int_equal(e->code, code);
  if (needle1 && !strstr(e->message, needle1)) fail_msg("open %s: '%s' does not say '%s'", url, e->message, needle1);
  if (needle2 && !strstr(e->message, needle2)) fail_msg("open %s: '%s' does not say '%s'", url, e->message, needle2);
}

/** Bad URLs are HTTPCACHE_EINVALID saying what is wrong; a store opened with another max_bytes
 *  than it was created with is EINVALID naming both (in another process, in this one after the
 *  first handle was freed, and while it is still open here); a path that is a regular file, or
 *  below one, is an error, not a crash. */
static void test_lmdb_bad_input(void **state) {
  fixture *f = *state;
  char url[800], path[700];
  httpcache_cache *c;
  int fd;
  expect_open_fails("lmdb://relative", HTTPCACHE_EINVALID, "absolute", NULL);
  expect_open_fails("lmdb://relative/dir", HTTPCACHE_EINVALID, "absolute", NULL);
  expect_open_fails("lmdb://", HTTPCACHE_EINVALID, "absolute", NULL);
  expect_open_fails("lmdb:///", HTTPCACHE_EINVALID, "not /", NULL);
  expect_open_fails("lmdb:////", HTTPCACHE_EINVALID, "not /", NULL);
  expect_open_fails("lmdb:///tmp/x?max_bytes=5", HTTPCACHE_EINVALID, "max_bytes", NULL);
  expect_open_fails("lmdb:///tmp/x?max_bytes=1048575", HTTPCACHE_EINVALID, "max_bytes", NULL);
  expect_open_fails("lmdb:///tmp/x?max_bytes=abc", HTTPCACHE_EINVALID, "max_bytes", NULL);
  expect_open_fails("lmdb:///tmp/x?max_bytes=", HTTPCACHE_EINVALID, "max_bytes", NULL);
  expect_open_fails("lmdb:///tmp/x?bogus=1", HTTPCACHE_EINVALID, "bogus", NULL);
  expect_open_fails("lmdb:///tmp/x%00y", HTTPCACHE_EINVALID, "NUL", NULL);

  /* Created with 1 MiB by another process; reopened here with 2 MiB. */
  {
    pid_t pid = fork_child();
    if (pid == 0) {
      httpcache_cache *w = open_quiet(url_with(f, "max_bytes=1048576", url, sizeof url), "mb", NULL);
      if (!w || httpcache_cache_set(NULL, w, "k", 1, "v", 1, &one_hour) != HTTPCACHE_OK) _exit(1);
      httpcache_cache_free(w);
      _exit(0);
    }
    assert_exited_ok(pid, 10000);
  }
  expect_open_fails(url_with(f, "max_bytes=2097152", url, sizeof url), HTTPCACHE_EINVALID, "1048576", "2097152");
  /* the default (256 MiB) is another value too */
  expect_open_fails(f->url, HTTPCACHE_EINVALID, "1048576", "268435456");
  /* with the right value it opens and reads */
  c = open_or_fail(url_with(f, "max_bytes=1048576", url, sizeof url), "mb", NULL);
  assert_int_equal(get_rc(c, "k"), HTTPCACHE_OK);
  /* while open in this process */
  expect_open_fails(url_with(f, "max_bytes=2097152", url, sizeof url), HTTPCACHE_EINVALID, "1048576", "2097152");
  assert_int_equal(get_rc(c, "k"), HTTPCACHE_OK); /* the refused open left the open one alone */
  httpcache_cache_free(c);
  /* after it was freed here (the store remembers its value) */
  expect_open_fails(url_with(f, "max_bytes=2097152", url, sizeof url), HTTPCACHE_EINVALID, "1048576", "2097152");
  /* A trailing slash names the same store. */
  snprintf(url, sizeof url, "%s/?max_bytes=1048576", f->url);
  c = open_or_fail(url, "mb", NULL);
  assert_int_equal(get_rc(c, "k"), HTTPCACHE_OK);
  httpcache_cache_free(c);

  /* A regular file where the directory should be, and a path below it. */
  snprintf(path, sizeof path, "%s/file", f->dir);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "not a store", 11), 11);
  close(fd);
  snprintf(url, sizeof url, "lmdb://%s", path);
  c = NULL;
  {
    int rc = httpcache_cache_open(&c, url, "bad", NULL, NULL);
    printf("%s -> %d: %s\n", url, rc, httpcache_error_last()->message);
    assert_int_not_equal(rc, HTTPCACHE_OK);
    assert_null(c);
    assert_non_null(strstr(httpcache_error_last()->message, "not a directory"));
  }
  snprintf(url, sizeof url, "lmdb://%s/below", path);
  {
    int rc = httpcache_cache_open(&c, url, "bad", NULL, NULL);
    printf("%s -> %d: %s\n", url, rc, httpcache_error_last()->message);
    assert_int_not_equal(rc, HTTPCACHE_OK);
    assert_null(c);
    assert_true(strlen(httpcache_error_last()->message) > 0);
  }
  /* the file is untouched */
  {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 11);
  }
}

/* ======================================================================== 8. fork with an open handle */

typedef struct {
  int wrong, missing, failed;
  int child_wrote, parent_wrote, child_checked;
} shared8;

/** A handle opened and used before fork(), used in the child while the parent goes on using it:
 *  the child reads the parent's entries, the parent reads the child's, each sees the other's
 *  writes and invalidations while both run, and both handles keep working after. */
static void test_lmdb_fork_inherited_handle(void **state) {
  fixture *f = *state;
  httpcache_cache *c = open_or_fail(f->url, "fork", NULL);
  shared8 *sh = shared_alloc(sizeof *sh);
  char key[32];
  pid_t pid;
  int i;
  for (i = 0; i < 50; ++i) {
    snprintf(key, sizeof key, "parent-%d", i);
    set_own_value(c, key);
  }
  expect_own_value(c, "parent-0");
  pid = fork_child();
  if (pid == 0) {
    const void *keys[] = {"parent-0"};
    size_t lens[] = {8};
    size_t deleted = 0;
    httpcache_buf v = HTTPCACHE_BUF_INIT;
    for (i = 0; i < 50; ++i) {
      int rc;
      snprintf(key, sizeof key, "parent-%d", i);
      rc = httpcache_cache_get(&v, NULL, c, key, strlen(key));
      if (rc == HTTPCACHE_ENOTFOUND) ++sh->missing;
      else if (rc != HTTPCACHE_OK) ++sh->failed;
      else if (!holds_own_value(&v, key)) ++sh->wrong;
    }
    for (i = 0; i < 50; ++i) {
      char value[512];
      size_t len;
      snprintf(key, sizeof key, "child-%d", i);
      len = value_of(value, sizeof value, key);
      if (httpcache_cache_set(NULL, c, key, strlen(key), value, len, &one_hour) != HTTPCACHE_OK) ++sh->failed;
    }
    if (httpcache_cache_invalidate(&deleted, c, keys, lens, 1) != HTTPCACHE_OK || deleted != 1) ++sh->failed;
    __atomic_store_n(&sh->child_wrote, 1, __ATOMIC_RELEASE);
    if (wait_flag(&sh->parent_wrote, 10000)) _exit(2);
    if (httpcache_cache_get(&v, NULL, c, "parent-late", 11) != HTTPCACHE_OK || !holds_own_value(&v, "parent-late"))
      ++sh->wrong;
    if (httpcache_cache_get(&v, NULL, c, "parent-1", 8) != HTTPCACHE_ENOTFOUND) ++sh->wrong; /* the parent's invalidation */
    httpcache_buf_dispose(&v);
    __atomic_store_n(&sh->child_checked, 1, __ATOMIC_RELEASE);
    httpcache_cache_free(c);
    _exit(0);
  }
  /* The parent keeps using its handle while the child runs. */
  set_own_value(c, "parent-during");
  if (wait_flag(&sh->child_wrote, 10000)) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("the child never wrote");
  }
  for (i = 0; i < 50; ++i) {
    snprintf(key, sizeof key, "child-%d", i);
    expect_own_value(c, key);
  }
  assert_int_equal(get_rc(c, "parent-0"), HTTPCACHE_ENOTFOUND);
  set_own_value(c, "parent-late");
  {
    const void *keys[] = {"parent-1"};
    size_t lens[] = {8};
    assert_int_equal(httpcache_cache_invalidate(NULL, c, keys, lens, 1), HTTPCACHE_OK);
  }
  __atomic_store_n(&sh->parent_wrote, 1, __ATOMIC_RELEASE);
  assert_exited_ok(pid, 10000);
  assert_int_equal(sh->child_checked, 1);
  assert_int_equal(sh->failed, 0);
  assert_int_equal(sh->missing, 0);
  assert_int_equal(sh->wrong, 0);
  /* After the child freed its copy, the parent's handle works on. */
  expect_own_value(c, "parent-during");
  expect_own_value(c, "parent-2");
  set_own_value(c, "parent-end");
  expect_own_value(c, "parent-end");
  httpcache_cache_free(c);
  munmap(sh, sizeof *sh);
}

/* ======================================================================== 9. after the review */

/* Child-safe helpers (no CMocka): 0 on success. */
static int quiet_set_sized(httpcache_cache *c, const char *key, size_t size) {
  char value[2048];
  sized_value(value, size, key);
  return httpcache_cache_set(NULL, c, key, strlen(key), value, size, &one_hour) != HTTPCACHE_OK;
}

/* 1: present and right, 0: a miss, -1: an error or a wrong value. */
static int quiet_get_sized(httpcache_cache *c, const char *key, size_t size) {
  char expected[2048];
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get(&v, NULL, c, key, strlen(key)), r;
  if (rc == HTTPCACHE_ENOTFOUND) return 0;
  sized_value(expected, size, key);
  r = rc == HTTPCACHE_OK && v.size == size && memcmp(v.ptr, expected, size) == 0 ? 1 : -1;
  httpcache_buf_dispose(&v);
  return r;
}

static int count_computations(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  ++*(int *)payload;
  return httpcache_buf_set(out, "tagged-value", 12);
}

/** A tag's generation keeps its place in the recency order: on max_bytes=1 MiB, a tagged entry is
 *  read (a hit) 200 times while 5,000 entries of 1 KiB (about 11 times the store) are written, 25
 *  between reads. Its tag key is only ever read with it, never written: were it left at its
 *  creation stamp, it would be evicted, a new generation made at the next read, and the entry,
 *  stamped with the old one, computed again. It must stay a hit, computed once. */
static void test_lmdb_lru_tag_keys(void **state) {
  fixture *f = *state;
  enum { ROUNDS = 200, WRITES = 25 };
  char url[800];
  httpcache_cache *c = open_or_fail(url_with(f, "max_bytes=1048576", url, sizeof url), "tagged", NULL);
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = 0;
  httpcache_call call = HTTPCACHE_CALL_INIT;
  const void *tags[] = {"tag-a"};
  size_t tag_lens[] = {5};
  int calls = 0, r, next = 0, first_recomputed = -1, rc;
  call.tags = tags;
  call.tag_lens = tag_lens;
  call.ntags = 1;
  for (r = 0; r < ROUNDS; ++r) {
    rc = httpcache_cache_get_or_compute_ex(&v, NULL, &outcome, c, "tagged", 6, &one_hour, &call, count_computations,
                                           &calls);
    if (rc != HTTPCACHE_OK) fail_msg("round %d: %d %s", r, rc, httpcache_error_last()->message);
    if (v.size != 12 || memcmp(v.ptr, "tagged-value", 12) != 0) fail_msg("round %d: a wrong value", r);
    if (calls > 1 && first_recomputed < 0) first_recomputed = r;
    lru_write(c, next, next + WRITES);
    next += WRITES;
  }
  rc = httpcache_cache_get_or_compute_ex(&v, NULL, &outcome, c, "tagged", 6, &one_hour, &call, count_computations,
                                         &calls);
  assert_int_equal(rc, HTTPCACHE_OK);
  printf("a tagged entry read %d times among %d writes of 1 KiB: computed %d time(s), first again at read %d; "
         "last outcome %d\n", ROUNDS + 1, next, calls, first_recomputed, (int)outcome);
  assert_false(lru_alive(c, 0)); /* the store did turn over */
  if (calls != 1)
    fail_msg("the tagged entry was computed %d times (again first at read %d, after %d KiB written)", calls,
             first_recomputed, first_recomputed * WRITES);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  httpcache_buf_dispose(&v);
  httpcache_cache_free(c);
}

#define RW_N0 400
#define RW_HOT 50
#define RW_BATCH 320
#define RW_BATCHES 3
#define RW_READ_MS 2300

typedef struct {
  int init_done, rounds, batches;
  int r_failed, w_failed;
  int reads, misses, first_miss_batch;
} shared_rw;

static void rw_key(char *out, size_t cap, int i) { snprintf(out, cap, "rw-%05d", i); }

/* Waits until *counter >= n; -1 after timeout_ms. For children. */
static int wait_at_least(const int *counter, int n, int timeout_ms) {
  int64_t end = test_now_ms() + timeout_ms;
  while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < n) {
    if (test_now_ms() > end) return -1;
    usleep(100);
  }
  return 0;
}

static void rw_writer(shared_rw *sh, const char *url) {
  char key[32];
  httpcache_cache *c = open_quiet(url, "rw", NULL);
  int next = 0;
  if (!c) _exit(10);
  for (; next < RW_N0; ++next) {
    rw_key(key, sizeof key, next);
    if (quiet_set_sized(c, key, 1024)) __atomic_add_fetch(&sh->w_failed, 1, __ATOMIC_RELAXED);
  }
  __atomic_store_n(&sh->init_done, 1, __ATOMIC_RELEASE);
  for (int b = 0; b < RW_BATCHES; ++b) {
    if (wait_at_least(&sh->rounds, b + 1, 20000)) _exit(11);
    for (int k = 0; k < RW_BATCH; ++k, ++next) {
      rw_key(key, sizeof key, next);
      if (quiet_set_sized(c, key, 1024)) __atomic_add_fetch(&sh->w_failed, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&sh->batches, b + 1, __ATOMIC_RELEASE);
  }
  httpcache_cache_free(c);
  _exit(0);
}

/* One read of the hot keys; the misses. */
static int rw_read_hot(shared_rw *sh, httpcache_cache *c) {
  char key[32];
  int misses = 0;
  for (int i = 0; i < RW_HOT; ++i) {
    int r;
    rw_key(key, sizeof key, i);
    r = quiet_get_sized(c, key, 1024);
    if (r < 0) __atomic_add_fetch(&sh->r_failed, 1, __ATOMIC_RELAXED);
    misses += r == 0;
  }
  ++sh->reads;
  sh->misses += misses;
  return misses;
}

static void rw_reader(shared_rw *sh, const char *url) {
  httpcache_cache *c = open_quiet(url, "rw", NULL);
  if (!c) _exit(20);
  if (wait_flag(&sh->init_done, 20000)) _exit(21);
  /* The hot keys are the oldest entries: read, then read again a second later (its look at where
   * the older half ends has run, and the keys it queued are a second old: it writes them). */
  if (rw_read_hot(sh, c)) sh->first_miss_batch = 0;
  test_sleep_ms(1100);
  if (rw_read_hot(sh, c)) sh->first_miss_batch = 0;
  for (int b = 0; b < RW_BATCHES; ++b) {
    int64_t end;
    __atomic_store_n(&sh->rounds, b + 1, __ATOMIC_RELEASE);
    if (wait_at_least(&sh->batches, b + 1, 20000)) _exit(22);
    /* Reads until the next batch; each batch takes the hot keys past the older half's end. */
    end = test_now_ms() + (b + 1 < RW_BATCHES ? RW_READ_MS : 0);
    do {
      if (rw_read_hot(sh, c) && sh->first_miss_batch < 0) sh->first_miss_batch = b + 1;
      usleep(2000);
    } while (test_now_ms() < end);
  }
  httpcache_cache_free(c);
  _exit(0);
}

/** A process that only reads keeps its hot keys: W writes 400 entries of 1 KiB into max_bytes=1 MiB
 *  (464 fit), then 3 batches of 320; R, its own handle, never writing, reads the first 50 (the
 *  oldest) before, then between W's batches, for 2.3 s each time. A batch leaves the hot keys in
 *  the older half but not evicted (320 of the 414 entries that fit beside them); R, learning where
 *  the older half ends once a second and writing the keys it queued once they are a second old,
 *  moves them to the newest end before the next batch. After 960 writes (the store turned over
 *  twice) nearly all of the 50 survive, none of the 350 unread entries of their age. */
static void test_lmdb_lru_reading_process(void **state) {
  fixture *f = *state;
  shared_rw *sh = shared_alloc(sizeof *sh);
  char url[800], key[32];
  httpcache_cache *c;
  pid_t w, r;
  int i, hot_alive = 0, cold_alive = 0, new_alive = 0, last = RW_N0 + RW_BATCH * RW_BATCHES;
  int64_t started = test_now_ms();
  url_with(f, "max_bytes=1048576", url, sizeof url);
  sh->first_miss_batch = -1;
  r = fork_child();
  if (r == 0) rw_reader(sh, url);
  w = fork_child();
  if (w == 0) rw_writer(sh, url);
  assert_exited_ok(w, 30000);
  assert_exited_ok(r, 30000);
  assert_int_equal(sh->w_failed, 0);
  assert_int_equal(sh->r_failed, 0);
  c = open_or_fail(url, "rw", NULL);
  for (i = 0; i < RW_N0; ++i) {
    rw_key(key, sizeof key, i);
    if (holds_sized(c, key, 1024)) ++*(i < RW_HOT ? &hot_alive : &cold_alive);
  }
  for (i = last - 100; i < last; ++i) {
    rw_key(key, sizeof key, i);
    new_alive += holds_sized(c, key, 1024);
  }
  printf("a reading process: %d of its %d hot keys survived %d writes of 1 KiB (%d misses in %d reads of them, the "
         "first after batch %d), %d of %d unread, %d of the 100 newest; %lld ms\n",
         hot_alive, RW_HOT, last - RW_N0, sh->misses, sh->reads, sh->first_miss_batch, cold_alive, RW_N0 - RW_HOT,
         new_alive, (long long)(test_now_ms() - started));
  assert_int_equal(new_alive, 100);
  assert_int_equal(cold_alive, 0);
  assert_true(hot_alive >= RW_HOT * 9 / 10);
  httpcache_cache_free(c);
  munmap(sh, sizeof *sh);
}

typedef struct {
  int peek_first, get, peek_after, value_ok, peek_value_ok;
} shared_peek;

/** httpcache_cache_peek never opens the store nor fails. A child that inherited a handle: peek
 *  before any blocking call is HTTPCACHE_ENOTFOUND (not answered here), then a get opens the store
 *  and answers, and peek answers after it. A child whose store directory was replaced by a file:
 *  peek is HTTPCACHE_ENOTFOUND before and after the get that fails (no error status, no crash). */
static void test_lmdb_peek_never_opens_nor_fails(void **state) {
  fixture *f = *state;
  httpcache_cache *c = open_or_fail(f->url, "peek", NULL);
  shared_peek *sh = shared_alloc(2 * sizeof *sh);
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  char moved[600];
  pid_t pid;
  int fd;
  set_own_value(c, "peeked");
  assert_int_equal(httpcache_cache_peek(&v, NULL, c, "peeked", 6), HTTPCACHE_OK); /* opened here: answered */
  assert_true(holds_own_value(&v, "peeked"));
  assert_int_equal(httpcache_cache_peek(&v, NULL, c, "absent", 6), HTTPCACHE_ENOTFOUND);

  for (int variant = 0; variant < 2; ++variant) {
    shared_peek *s = &sh[variant];
    if (variant == 1) { /* the directory unusable: moved away, a regular file in its place */
      snprintf(moved, sizeof moved, "%s.moved", f->dir);
      assert_int_equal(rename(f->dir, moved), 0);
      fd = open(f->dir, O_WRONLY | O_CREAT | O_EXCL, 0600);
      assert_true(fd >= 0);
      close(fd);
    }
    pid = fork_child();
    if (pid == 0) {
      httpcache_buf cv = HTTPCACHE_BUF_INIT;
      s->peek_first = httpcache_cache_peek(&cv, NULL, c, "peeked", 6);
      s->get = httpcache_cache_get(&cv, NULL, c, "peeked", 6);
      s->value_ok = s->get == HTTPCACHE_OK && holds_own_value(&cv, "peeked");
      httpcache_buf_dispose(&cv);
      s->peek_after = httpcache_cache_peek(&cv, NULL, c, "peeked", 6);
      s->peek_value_ok = s->peek_after == HTTPCACHE_OK && holds_own_value(&cv, "peeked");
      httpcache_buf_dispose(&cv);
      _exit(0);
    }
    assert_exited_ok(pid, 10000);
    printf("%s: peek %d, get %d, peek %d\n", variant ? "store directory replaced by a file" : "inherited handle",
           s->peek_first, s->get, s->peek_after);
  }
  assert_int_equal(unlink(f->dir), 0);
  assert_int_equal(rename(moved, f->dir), 0);
  /* inherited: not answered before the first blocking call, answered after it */
  assert_int_equal(sh[0].peek_first, HTTPCACHE_ENOTFOUND);
  assert_int_equal(sh[0].get, HTTPCACHE_OK);
  assert_true(sh[0].value_ok);
  assert_int_equal(sh[0].peek_after, HTTPCACHE_OK);
  assert_true(sh[0].peek_value_ok);
  /* unusable: get fails, peek never does */
  assert_int_equal(sh[1].peek_first, HTTPCACHE_ENOTFOUND);
  assert_int_not_equal(sh[1].get, HTTPCACHE_OK);
  assert_int_equal(sh[1].peek_after, HTTPCACHE_ENOTFOUND);
  /* the parent's handle works on */
  expect_own_value(c, "peeked");
  assert_int_equal(httpcache_cache_peek(&v, NULL, c, "peeked", 6), HTTPCACHE_OK);
  httpcache_buf_dispose(&v);
  httpcache_cache_free(c);
  munmap(sh, 2 * sizeof *sh);
}

#define CHURN_THREADS 4
#define CHURN_ITERS 200
/* Read through each environment; under TSan smaller (its memcpy checks every byte read). */
#if defined(__SANITIZE_THREAD__)
#define CHURN_BIG (64 << 10)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHURN_BIG (64 << 10)
#endif
#endif
#ifndef CHURN_BIG
#define CHURN_BIG (1 << 20)
#endif

typedef struct {
  int start;
  int open_failed, failed, wrong, unlocked, done;
  int reported;
  char message[256];
} shared_churn;

static shared_churn *shc;
static const char *churn_url, *churn_dir;
static int churn_check_lock; /* whether /proc/locks shows LMDB's lock here */

static void churn_report(const char *what, const char *key, int rc) {
  if (__atomic_exchange_n(&shc->reported, 1, __ATOMIC_ACQ_REL)) return;
  snprintf(shc->message, sizeof shc->message, "pid %d: %s %s: %d %s", (int)getpid(), what, key, rc,
           httpcache_error_last()->message);
}

/* Whether this process holds LMDB's lock on DIR/lock.mdb (byte 0, shared once open: a POSIX lock
 * of this pid on that inode in /proc/locks), as a process must while it has the store open: a
 * process that lost it is not seen by the next opener, which would take itself for the only user
 * and reset the lock table (reader slots, the writer's mutex) under it. */
static int holds_lmdb_lock(const char *dir) {
  char path[600], line[256];
  struct stat st;
  FILE *fp;
  int held = 0;
  snprintf(path, sizeof path, "%s/lock.mdb", dir);
  if (stat(path, &st) != 0 || !(fp = fopen("/proc/locks", "r"))) return 0;
  while (!held && fgets(line, sizeof line, fp)) {
    char type[16], start[32], end[32];
    int pid;
    unsigned long ino;
    if (sscanf(line, "%*[^:]: %15s %*s %*s %d %*x:%*x:%lu %31s %31s", type, &pid, &ino, start, end) == 5)
      held = strcmp(type, "POSIX") == 0 && pid == (int)getpid() && ino == (unsigned long)st.st_ino &&
             strcmp(start, "0") == 0 && strcmp(end, "0") == 0;
  }
  fclose(fp);
  return held;
}

static pthread_barrier_t churn_barrier;
static int churn_freeing;

static void *churn_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  char key[64], value[512];
  for (int i = 0; i < CHURN_ITERS; ++i) {
    httpcache_cache *c = NULL;
    httpcache_buf v = HTTPCACHE_BUF_INIT;
    size_t len;
    int rc;
    snprintf(key, sizeof key, "churn-%d-%d-%d", (int)getpid(), t, i);
    rc = httpcache_cache_open(&c, churn_url, "churn", NULL, NULL);
    if (rc != HTTPCACHE_OK) {
      __atomic_add_fetch(&shc->open_failed, 1, __ATOMIC_RELAXED);
      churn_report("open for", key, rc);
    } else {
      len = value_of(value, sizeof value, key);
      rc = httpcache_cache_set(NULL, c, key, strlen(key), value, len, &one_hour);
      if (rc != HTTPCACHE_OK) {
        __atomic_add_fetch(&shc->failed, 1, __ATOMIC_RELAXED);
        churn_report("set", key, rc);
      } else if ((rc = httpcache_cache_get(&v, NULL, c, key, strlen(key))) != HTTPCACHE_OK) {
        __atomic_add_fetch(&shc->failed, 1, __ATOMIC_RELAXED);
        churn_report("get", key, rc);
      } else if (!holds_own_value(&v, key)) {
        __atomic_add_fetch(&shc->wrong, 1, __ATOMIC_RELAXED);
        churn_report("a wrong value at", key, rc);
      }
      httpcache_buf_dispose(&v);
      /* A large entry read through each environment: its map holds that many pages, so closing it
       * takes a while (a window for another thread's open). */
      if ((rc = httpcache_cache_get(&v, NULL, c, "big", 3)) != HTTPCACHE_OK || v.size != CHURN_BIG) {
        __atomic_add_fetch(&shc->failed, 1, __ATOMIC_RELAXED);
        churn_report("get", "big", rc);
      }
      httpcache_buf_dispose(&v);
      if (churn_check_lock && !holds_lmdb_lock(churn_dir)) {
        __atomic_add_fetch(&shc->unlocked, 1, __ATOMIC_RELAXED);
        churn_report("no LMDB lock held with a handle open, after", key, 0);
      }
    }
    /* All four free at once, and open again as soon as the last one has begun to free: while it
     * closes the environment (the last handle), the others open the directory again. */
    pthread_barrier_wait(&churn_barrier);
    __atomic_add_fetch(&churn_freeing, 1, __ATOMIC_ACQ_REL);
    if (c) httpcache_cache_free(c);
    while (__atomic_load_n(&churn_freeing, __ATOMIC_ACQUIRE) < CHURN_THREADS * (i + 1)) sched_yield();
    __atomic_add_fetch(&shc->done, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

/* A churning process: its 4 threads; a crash shows as its signal (CMocka's handlers, inherited,
 * are reset). */
static void churn_child(void) {
  pthread_t tid[CHURN_THREADS];
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
  signal(SIGILL, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  signal(SIGSYS, SIG_DFL);
  if (arrive_and_wait(&shc->start, 2, 10000)) _exit(2);
  if (pthread_barrier_init(&churn_barrier, NULL, CHURN_THREADS)) _exit(3);
  for (int t = 0; t < CHURN_THREADS; ++t)
    if (pthread_create(&tid[t], NULL, churn_thread, (void *)(intptr_t)t)) _exit(4);
  for (int t = 0; t < CHURN_THREADS; ++t) pthread_join(tid[t], NULL);
  _exit(0);
}

/** Handles opened and freed over and over on one directory: in each of two processes, 4 threads
 *  each open a handle, set and read back a key of their own (and a 1 MiB entry, so the store's map
 *  holds many pages and closing it takes a while), and free it, 200 times; the four free at once,
 *  the last closing the environment while the others open the directory again. Every process has
 *  at most one environment per directory, the last handle closing it before another can be
 *  opened: a second copy opened beside one being closed loses its LMDB locks when the other
 *  closes (the next opener elsewhere then resets the lock table under it). Every call succeeds
 *  with the right value, and a process with a handle open always holds its LMDB lock. (Two
 *  children, so that a hang or a crash is this test's failure, not the runner's.) */
static void test_lmdb_open_close_churn(void **state) {
  fixture *f = *state;
  pid_t pids[2];
  char url[800];
  int64_t started = test_now_ms();
  shc = shared_alloc(sizeof *shc);
  churn_url = url_with(f, "max_bytes=16777216", url, sizeof url); /* a small map: cheap under TSan */
  churn_dir = f->dir;
  {
    httpcache_cache *c = open_or_fail(churn_url, "churn", NULL);
    char *big = malloc(CHURN_BIG);
    assert_non_null(big);
    memset(big, 'b', CHURN_BIG);
    assert_int_equal(httpcache_cache_set(NULL, c, "big", 3, big, CHURN_BIG, &one_hour), HTTPCACHE_OK);
    free(big);
    churn_check_lock = holds_lmdb_lock(churn_dir);
    if (!churn_check_lock) printf("LMDB's lock is not seen in /proc/locks: not checked\n");
    httpcache_cache_free(c);
  }
  for (int i = 0; i < 2; ++i) {
    pids[i] = fork_child();
    if (pids[i] == 0) churn_child();
  }
  for (int i = 0, status = 0; i < 2; ++i) {
    int64_t end = test_now_ms() + 60000;
    while (waitpid(pids[i], &status, WNOHANG) != pids[i]) {
      if (test_now_ms() > end) { /* a hang (a writer's mutex lost, say): the ones left go */
        for (int k = i; k < 2; ++k) {
          kill(pids[k], SIGKILL);
          waitpid(pids[k], NULL, 0);
        }
        fail_msg("churning process %d did not finish within 60 s (%s)", (int)pids[i], shc->message);
      }
      test_sleep_ms(1);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      if (i == 0) {
        kill(pids[1], SIGKILL);
        waitpid(pids[1], NULL, 0);
      }
      fail_msg("churning process %d: %s %d (%s)", (int)pids[i], WIFEXITED(status) ? "exit status" : "killed by signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), shc->message);
    }
  }
  printf("open/close churn: %d rounds of open, set, get, free in 2 processes x %d threads, %d failed opens, %d "
         "failed calls, %d wrong values, %d without the LMDB lock; %lld ms%s%s\n",
         shc->done, CHURN_THREADS, shc->open_failed, shc->failed, shc->wrong, shc->unlocked,
         (long long)(test_now_ms() - started), shc->reported ? "; first: " : "", shc->message);
  assert_int_equal(shc->open_failed, 0);
  assert_int_equal(shc->failed, 0);
  assert_int_equal(shc->wrong, 0);
  assert_int_equal(shc->unlocked, 0);
  assert_int_equal(shc->done, 2 * CHURN_THREADS * CHURN_ITERS);
  munmap(shc, sizeof *shc);
  shc = NULL;
}

/** A store directory group or others may write to is refused: HTTPCACHE_EINVALID saying so
 *  (whoever can write there can plant entries every process serves); readable by all is fine. */
static void test_lmdb_directory_writable_by_others(void **state) {
  fixture *f = *state;
  httpcache_cache *c;
  assert_int_equal(mkdir(f->dir, 0700), 0);
  assert_int_equal(chmod(f->dir, 0777), 0);
  expect_open_fails(f->url, HTTPCACHE_EINVALID, "writable by group or others", NULL);
  assert_int_equal(chmod(f->dir, 0720), 0);
  expect_open_fails(f->url, HTTPCACHE_EINVALID, "writable by group or others", NULL);
  assert_int_equal(chmod(f->dir, 0702), 0);
  expect_open_fails(f->url, HTTPCACHE_EINVALID, "writable by group or others", NULL);
  assert_int_equal(chmod(f->dir, 0755), 0);
  c = open_or_fail(f->url, "mode", NULL);
  set_own_value(c, "k");
  expect_own_value(c, "k");
  httpcache_cache_free(c);
}

typedef struct {
  int wrote, gone, kept, failed;
} shared_boot;

/** A store whose boot_id is missing (an OS crash before it reached the disk: unsynced pages may be
 *  missing too) starts empty when a new process opens it, and boot_id names this boot again. */
static void test_lmdb_missing_boot_id(void **state) {
  fixture *f = *state;
  shared_boot *sh = shared_alloc(sizeof *sh);
  char path[700], boot[128] = "", recorded[128] = "";
  FILE *fp;
  pid_t pid;
  struct stat st;

  pid = fork_child();
  if (pid == 0) {
    httpcache_cache *c = open_quiet(f->url, "boot", NULL);
    if (!c) _exit(1);
    for (int i = 0; i < 20; ++i) {
      char key[32];
      snprintf(key, sizeof key, "before-%d", i);
      sh->failed += quiet_set_sized(c, key, 100);
      sh->wrote += quiet_get_sized(c, key, 100) == 1;
    }
    httpcache_cache_free(c);
    _exit(0);
  }
  assert_exited_ok(pid, 10000);
  assert_int_equal(sh->failed, 0);
  assert_int_equal(sh->wrote, 20);
  snprintf(path, sizeof path, "%s/data.mdb", f->dir);
  assert_int_equal(stat(path, &st), 0);
  snprintf(path, sizeof path, "%s/boot_id", f->dir);
  assert_int_equal(unlink(path), 0);

  pid = fork_child();
  if (pid == 0) {
    httpcache_cache *c = open_quiet(f->url, "boot", NULL);
    if (!c) _exit(1);
    for (int i = 0; i < 20; ++i) {
      char key[32];
      int r;
      snprintf(key, sizeof key, "before-%d", i);
      r = quiet_get_sized(c, key, 100);
      if (r < 0) ++sh->failed;
      else if (r == 0) ++sh->gone;
      else ++sh->kept;
    }
    sh->failed += quiet_set_sized(c, "after", 100);
    sh->failed += quiet_get_sized(c, "after", 100) != 1;
    httpcache_cache_free(c);
    _exit(0);
  }
  assert_exited_ok(pid, 10000);
  printf("a store without boot_id, opened again: %d of 20 entries gone, %d kept\n", sh->gone, sh->kept);
  assert_int_equal(sh->failed, 0);
  assert_int_equal(sh->kept, 0);
  assert_int_equal(sh->gone, 20);
  fp = fopen("/proc/sys/kernel/random/boot_id", "r");
  assert_non_null(fp);
  assert_non_null(fgets(boot, sizeof boot, fp));
  fclose(fp);
  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_non_null(fgets(recorded, sizeof recorded, fp));
  fclose(fp);
  assert_string_equal(recorded, boot);
  snprintf(path, sizeof path, "%s/boot_id.tmp", f->dir);
  assert_int_equal(access(path, F_OK), -1); /* renamed into place, not left behind */
  munmap(sh, sizeof *sh);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lmdb_basic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_processes_own_handles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_processes_inherited_handle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_sigkill_writers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_fill_past_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_lru_touch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_lru_fixed_read_pattern, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_crash_and_stale_readers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_namespaces_and_long_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_fork_inherited_handle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_lru_tag_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_lru_reading_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_peek_never_opens_nor_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_open_close_churn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_directory_writable_by_others, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lmdb_missing_boot_id, setup, teardown),
  };
  const char *env_seed = getenv("HTTPCACHE_TEST_SEED");
  int failed;
  snprintf(base_dir, sizeof base_dir, "%s/httpcache-lmdb-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(base_dir)) {
    perror("mkdtemp");
    return 1;
  }
  seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
  printf("HTTPCACHE_TEST_SEED=%u\n", seed);
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  remove_tree(base_dir);
  return failed;
}
