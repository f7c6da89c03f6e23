/* SPDX-License-Identifier: MIT
 * fork() after a handle was used (a pre-forking server warming its cache, multiprocessing's fork
 * start method): the child never uses a connection it inherited, and the parent is unaffected.
 *
 * The parent warms a handle (blocking calls from several threads, so the pool holds several
 * connections, and a non-blocking context with a request done), keeps two threads working on
 * their own keys while it forks 4 children, and keeps using its non-blocking context while they
 * run. Each child makes thousands of blocking calls on its own keys, reads keys the parent stored
 * before the fork, then uses the context it inherited and a new context of its own; every value
 * is checked against the one derived from its key. A child reports its counts through a pipe and
 * exits non-zero on any wrong, missing or failed call; a child that hangs (a lock held by a thread
 * that does not exist in it, a join of the cluster refresher) is killed at a deadline and counted.
 * Then the children free the inherited handle, which must not wait for anything.
 *
 * HTTPCACHE_TEST_FORK_CALLS sets the blocking calls per child (default 5000; 1000 under
 * sanitizers). */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

/* A child of a multi-threaded parent starts threads here (the cluster's slot map refresher), which
 * TSan refuses by default. This only matters in the TSan build; elsewhere the function is unused. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "die_after_fork=0"; }

#define NCHILDREN 4
#define NWARM 64
#define PARENT_THREADS 2
#define WARM_THREADS 6
#define CHILD_DEADLINE_MS 90000
#define LOCK_ROUNDS 50
#define LOCK_FORKS_PER_ROUND 4

typedef struct {
  long calls, wrong, missing, failed;
} counts;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_CALLS 1000 /* sanitizers are 5 to 15 times slower */
#else
#define DEFAULT_CALLS 5000
#endif

static int calls_per_child(void) {
  const char *env = getenv("HTTPCACHE_TEST_FORK_CALLS");
  int n = env ? atoi(env) : 0;
  return n > 0 ? n : DEFAULT_CALLS;
}

/* The value of `key`: derived from the key alone, and long enough that a foreign one never matches. */
static size_t value_of(char *out, size_t cap, const char *key) {
  int n = snprintf(out, cap, "value-of|%s|%08x|", key, (unsigned)strlen(key) * 2654435761U);
  return (size_t)n;
}

/* One blocking get of `key`, which must hold value_of(key). */
static void check_get(httpcache_cache *cache, const char *key, counts *c) {
  char expected[256];
  size_t len = value_of(expected, sizeof expected, key);
  httpcache_buf got = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get(&got, NULL, cache, key, strlen(key));
  ++c->calls;
  if (rc == HTTPCACHE_OK) {
    if (got.size != len || memcmp(got.ptr, expected, len) != 0) ++c->wrong;
  } else if (rc == HTTPCACHE_ENOTFOUND) {
    ++c->missing;
  } else {
    ++c->failed;
  }
  httpcache_buf_dispose(&got);
}

static void put(httpcache_cache *cache, const char *key, counts *c) {
  static const httpcache_ttl_policy ttl = {HTTPCACHE_TTL_SECONDS, 120, NULL, NULL};
  char value[256];
  size_t len = value_of(value, sizeof value, key);
  ++c->calls;
  if (httpcache_cache_set(NULL, cache, key, strlen(key), value, len, &ttl) != HTTPCACHE_OK) ++c->failed;
}

typedef struct {
  const char *key;
  counts *c;
  int done;
} async_call;

static void on_async_get(int status, const void *value, size_t size, int64_t ttl_ms, void *payload) {
  async_call *a = payload;
  char expected[256];
  size_t len = value_of(expected, sizeof expected, a->key);
  (void)ttl_ms;
  a->done = 1;
  if (status == HTTPCACHE_OK) {
    if (size != len || memcmp(value, expected, len) != 0) ++a->c->wrong;
  } else if (status == HTTPCACHE_ENOTFOUND) {
    ++a->c->missing;
  } else {
    ++a->c->failed;
  }
}

static void on_async_set(int status, int64_t count, void *payload) {
  async_call *a = payload;
  (void)count;
  a->done = 1;
  if (status != HTTPCACHE_OK) ++a->c->failed;
}

/* One non-blocking store of `key` and one lookup of it, each run to completion. */
static void async_round(httpcache_async *ctx, test_loop *l, const char *key, counts *c) {
  static const httpcache_ttl_policy ttl = {HTTPCACHE_TTL_SECONDS, 120, NULL, NULL};
  char value[256];
  size_t len = value_of(value, sizeof value, key);
  async_call set = {key, c, 0}, get = {key, c, 0};
  c->calls += 2;
  if (httpcache_async_set(ctx, key, strlen(key), value, len, &ttl, on_async_set, &set) != HTTPCACHE_OK) {
    ++c->failed;
    return;
  }
  test_loop_run(l, ctx, 10000);
  if (!set.done) ++c->failed;
  if (httpcache_async_get(ctx, key, strlen(key), on_async_get, &get) != HTTPCACHE_OK) {
    ++c->failed;
    return;
  }
  test_loop_run(l, ctx, 10000);
  if (!get.done) ++c->failed;
}

static int compute_slowly(httpcache_buf *value, uint32_t *flags, void *payload) {
  char v[256];
  size_t len = value_of(v, sizeof v, payload);
  (void)flags;
  usleep(300); /* long enough that the other threads join the flight and wait on it */
  return httpcache_buf_set(value, v, len);
}

/* One get_or_compute of this millisecond's key: threads calling at once share one computation (a
 * flight, its followers waiting on it), which a fork may cut through. */
static void flight(httpcache_cache *cache, counts *c) {
  static const httpcache_ttl_policy ttl = {HTTPCACHE_TTL_SECONDS, 120, NULL, NULL};
  char key[64], expected[256];
  httpcache_buf got = HTTPCACHE_BUF_INIT;
  size_t len;
  int rc;
  snprintf(key, sizeof key, "flight-%lld", (long long)test_now_ms());
  len = value_of(expected, sizeof expected, key);
  rc = httpcache_cache_get_or_compute(&got, NULL, NULL, cache, key, strlen(key), &ttl, compute_slowly, key);
  ++c->calls;
  if (rc != HTTPCACHE_OK) ++c->failed;
  else if (got.size != len || memcmp(got.ptr, expected, len) != 0) ++c->wrong;
  httpcache_buf_dispose(&got);
}

/* ---- the parent's threads, working on their own keys while it forks ---- */

/* A thread of the parent: round after round of one kind of work, until *stop. */
typedef struct worker worker;
struct worker {
  httpcache_cache *cache;
  int id;
  volatile int *stop;
  counts c;
  void (*round)(worker *w, unsigned n);
  const char *url, *ns; /* churn_round's: the handles it opens */
  const httpcache_options *opts;
};

/* GCC 12's libasan (Debian 12's) does not hold its allocator's locks across fork(): LLVM's ASan
 * runtime added that pthread_atfork handler in version 18 (llvm-project PR 75290). A child forked
 * while another thread is inside malloc can then deadlock in the sanitizer itself, whatever the
 * program does (CPython skips such tests under ASan for the same reason). So under ASan the
 * parent's threads pause at this gate while a child is forked: the instrumented run still checks
 * the child's memory accesses, and the uninstrumented suite forks with the threads running, which
 * is the case of the library's own locks. */
#if defined(__SANITIZE_ADDRESS__)
#define FORK_PAUSES_THREADS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORK_PAUSES_THREADS 1
#endif
#endif
#ifndef FORK_PAUSES_THREADS
#define FORK_PAUSES_THREADS 0
#endif
static pthread_rwlock_t fork_gate;

static void gate_init(void) {
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP); /* forks are not starved */
  pthread_rwlock_init(&fork_gate, &a);
  pthread_rwlockattr_destroy(&a);
}

/* fork(), with the parent's threads paused under ASan (see fork_gate). */
static pid_t fork_now(void) {
  pid_t pid;
  fflush(NULL);
  if (FORK_PAUSES_THREADS) pthread_rwlock_wrlock(&fork_gate);
  pid = fork();
  if (FORK_PAUSES_THREADS && pid != 0) pthread_rwlock_unlock(&fork_gate); /* the child never uses it */
  return pid;
}

/* Workers that have entered run_worker. A thread still starting (inside pthread_create's
 * setup, which under ASan allocates and takes the sanitizer's thread registry lock) is not at the
 * gate yet: under ASan the tests fork only once every worker runs. */
static int workers_running;

static void wait_for_workers(int n) {
  int64_t end = test_now_ms() + 10000;
  while (__atomic_load_n(&workers_running, __ATOMIC_ACQUIRE) < n && test_now_ms() < end) test_sleep_ms(1);
}

static void *run_worker(void *arg) {
  worker *w = arg;
  __atomic_add_fetch(&workers_running, 1, __ATOMIC_RELEASE);
  for (unsigned n = 0; !*w->stop; ++n) {
    if (FORK_PAUSES_THREADS) pthread_rwlock_rdlock(&fork_gate);
    w->round(w, n);
    if (FORK_PAUSES_THREADS) pthread_rwlock_unlock(&fork_gate);
  }
  return NULL;
}

/* A store, a lookup and a shared computation on the worker's handle. */
static void store_round(worker *w, unsigned n) {
  char key[64];
  snprintf(key, sizeof key, "parent-%d-%u", w->id, n % 500);
  put(w->cache, key, &w->c);
  check_get(w->cache, key, &w->c);
  flight(w->cache, &w->c);
}

/* Opens a handle of its own, uses it once and frees it: over TLS each round makes a TLS context
 * and a handshake, so the forks come while a thread is inside OpenSSL, whose own locks a child
 * must not inherit held (the near tier's, the cluster's and Sentinel's threads are in it the same
 * way when they connect). */
static void churn_round(worker *w, unsigned n) {
  httpcache_cache *cache = NULL;
  char key[64];
  snprintf(key, sizeof key, "churn-%u", n % 500);
  if (httpcache_cache_open(&cache, w->url, w->ns, NULL, w->opts) != HTTPCACHE_OK) {
    ++w->c.failed;
    return;
  }
  put(cache, key, &w->c);
  check_get(cache, key, &w->c);
  httpcache_cache_free(cache);
}

/* Computes end-of-day and end-of-week TTLs in zone after zone: ICU takes its own locks for its
 * zone and calendar data, which a child computing a TTL must not inherit held. */
static const char *const zones[] = {"Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
                                    "Africa/Cairo", "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Auckland"};

/* One TTL of each calendar kind in zones[n % 8]: 1 if either fails. */
static int compute_ttls(unsigned n) {
  static const httpcache_ttl_policy day = {HTTPCACHE_TTL_END_OF_DAY, 0, NULL, NULL};
  static const httpcache_ttl_policy week = {HTTPCACHE_TTL_END_OF_WEEK, 0, NULL, NULL};
  int64_t secs = 0;
  const char *zone = zones[n % (sizeof zones / sizeof zones[0])];
  const int64_t now = test_now_ms();
  return httpcache_ttl_compute(&secs, &day, zone, now) != HTTPCACHE_OK || secs < 1 ||
         httpcache_ttl_compute(&secs, &week, zone, now) != HTTPCACHE_OK || secs < 1;
}

static void zone_round(worker *w, unsigned n) {
  ++w->c.calls;
  w->c.failed += compute_ttls(n);
}

/* ---- one child ---- */

static void child_main(int id, httpcache_cache *cache, httpcache_async *inherited, test_loop *inherited_loop, int out_fd) {
  counts c = {0, 0, 0, 0}, blocking;
  char key[64];
  const int calls = calls_per_child();
  /* Blocking calls on its own keys (a store and a lookup per key), and the keys the parent stored
   * before the fork. */
  for (int n = 0; n < calls / 2; ++n) {
    snprintf(key, sizeof key, "child-%d-%d", id, n);
    put(cache, key, &c);
    check_get(cache, key, &c);
    if (n % 10 == 0) {
      snprintf(key, sizeof key, "warm-%d", n % NWARM);
      check_get(cache, key, &c);
    }
  }
  /* The blocking counts first: the parent reads whatever arrived, even if this child dies later. */
  if (write(out_fd, &c, sizeof c) != (ssize_t)sizeof c) _exit(3);
  blocking = c;
  /* The non-blocking context inherited from the parent: its first call drops the inherited
   * connection without any I/O and connects anew. */
  for (int n = 0; n < 100; ++n) {
    snprintf(key, sizeof key, "child-async-%d-%d", id, n);
    async_round(inherited, inherited_loop, key, &c);
  }
  httpcache_async_free(inherited);
  /* A context of its own, as documented for children. */
  {
    test_loop own = TEST_LOOP_INIT;
    httpcache_async *ctx = NULL;
    if (httpcache_async_open(&ctx, cache, test_loop_watch, &own) != HTTPCACHE_OK) {
      ++c.failed;
    } else {
      for (int n = 0; n < 100; ++n) {
        snprintf(key, sizeof key, "child-own-%d-%d", id, n);
        async_round(ctx, &own, key, &c);
      }
      httpcache_async_free(ctx);
    }
  }
  httpcache_cache_free(cache); /* must not join or signal anything of the parent's */
  c.calls -= blocking.calls;
  c.wrong -= blocking.wrong;
  c.missing -= blocking.missing;
  c.failed -= blocking.failed;
  if (write(out_fd, &c, sizeof c) != (ssize_t)sizeof c) _exit(3);
  _exit(blocking.wrong || blocking.missing || blocking.failed || c.wrong || c.missing || c.failed ? 1 : 0);
}

/* ---- the test ---- */

static void run_fork_test(const char *url, const char *label) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache = NULL;
  httpcache_async *ctx = NULL;
  test_loop parent_loop = TEST_LOOP_INIT;
  pid_t pids[NCHILDREN];
  int fds[NCHILDREN];
  int exit_status[NCHILDREN];
  counts parent = {0, 0, 0, 0};
  pthread_t threads[PARENT_THREADS];
  worker workers[PARENT_THREADS];
  volatile int stop = 0;
  char key[64];
  long total_wrong = 0, total_missing = 0, total_failed = 0, hung = 0;

  opts.command_timeout_ms = 10000; /* a loaded machine and sanitizers: no call may fail for time */
  opts.connect_timeout_ms = 10000;
  opts.breaker_failures = 1000000;
  assert_int_equal(httpcache_cache_open(&cache, url, test_unique_namespace("fork"), NULL, &opts), HTTPCACHE_OK);

  /* Warm: stored values, several pooled connections, a non-blocking request done. */
  for (int n = 0; n < NWARM; ++n) {
    snprintf(key, sizeof key, "warm-%d", n);
    put(cache, key, &parent);
    check_get(cache, key, &parent);
  }
  { /* several threads at once, so that the pool keeps several idle connections */
    pthread_t warmers[WARM_THREADS];
    worker warm[WARM_THREADS];
    volatile int warm_stop = 0;
    for (int t = 0; t < WARM_THREADS; ++t) {
      warm[t] = (worker){.cache = cache, .id = 100 + t, .stop = &warm_stop, .round = store_round};
      assert_int_equal(pthread_create(&warmers[t], NULL, run_worker, &warm[t]), 0);
    }
    test_sleep_ms(100);
    warm_stop = 1;
    for (int t = 0; t < WARM_THREADS; ++t) {
      pthread_join(warmers[t], NULL);
      parent.wrong += warm[t].c.wrong;
      parent.missing += warm[t].c.missing;
      parent.failed += warm[t].c.failed;
    }
  }
  __atomic_store_n(&workers_running, 0, __ATOMIC_RELEASE);
  for (int t = 0; t < PARENT_THREADS; ++t) {
    workers[t] = (worker){.cache = cache, .id = t, .stop = &stop, .round = store_round};
    assert_int_equal(pthread_create(&threads[t], NULL, run_worker, &workers[t]), 0);
  }
  wait_for_workers(PARENT_THREADS);
  assert_int_equal(httpcache_async_open(&ctx, cache, test_loop_watch, &parent_loop), HTTPCACHE_OK);
  async_round(ctx, &parent_loop, "parent-async-warm", &parent);
  test_sleep_ms(50); /* the threads are mid-call when we fork */

  for (int i = 0; i < NCHILDREN; ++i) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    pids[i] = fork_now();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      alarm(CHILD_DEADLINE_MS / 1000 + 30); /* never outlives a killed parent for long */
      close(p[0]);
      child_main(i, cache, ctx, &parent_loop, p[1]);
    }
    close(p[1]);
    fds[i] = p[0];
    exit_status[i] = -1;
  }

  /* The parent keeps working (blocking threads, and its non-blocking context here) until every
   * child has exited or the deadline passes. */
  {
    int64_t deadline = test_now_ms() + CHILD_DEADLINE_MS;
    int left = NCHILDREN;
    for (unsigned n = 0; left > 0; ++n) {
      snprintf(key, sizeof key, "parent-async-%u", n % 500);
      async_round(ctx, &parent_loop, key, &parent);
      for (int i = 0; i < NCHILDREN; ++i) {
        int status;
        if (exit_status[i] != -1) continue;
        if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
          exit_status[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          --left;
        } else if (test_now_ms() > deadline) {
          kill(pids[i], SIGKILL);
          waitpid(pids[i], &status, 0);
          exit_status[i] = 999;
          ++hung;
          --left;
        }
      }
      if (n > 1000000) break;
    }
  }
  stop = 1;
  for (int t = 0; t < PARENT_THREADS; ++t) {
    pthread_join(threads[t], NULL);
    parent.calls += workers[t].c.calls;
    parent.wrong += workers[t].c.wrong;
    parent.missing += workers[t].c.missing;
    parent.failed += workers[t].c.failed;
  }
  for (int i = 0; i < NCHILDREN; ++i) {
    for (int part = 0; part < 2; ++part) {
      counts got = {0, 0, 0, 0};
      const char *what = part == 0 ? "blocking" : "non-blocking";
      if (read(fds[i], &got, sizeof got) != (ssize_t)sizeof got) {
        printf("%s child %d: exit %d, no %s report\n", label, i, exit_status[i], what);
        continue;
      }
      printf("%s child %d: exit %d, %s: %ld calls, %ld wrong, %ld missing, %ld failed\n", label, i, exit_status[i],
             what, got.calls, got.wrong, got.missing, got.failed);
      total_wrong += got.wrong;
      total_missing += got.missing;
      total_failed += got.failed;
    }
    close(fds[i]);
  }
  printf("%s parent: %ld calls, %ld wrong, %ld missing, %ld failed; children hung: %ld\n", label, parent.calls,
         parent.wrong, parent.missing, parent.failed, hung);
  fflush(stdout);

  httpcache_async_free(ctx);
  httpcache_cache_free(cache);
  assert_int_equal(total_wrong + parent.wrong, 0);
  assert_int_equal(total_missing + parent.missing, 0);
  assert_int_equal(total_failed + parent.failed, 0);
  assert_int_equal(hung, 0);
  for (int i = 0; i < NCHILDREN; ++i) assert_int_equal(exit_status[i], 0);
}

static void test_fork_redis(void **state) {
  (void)state;
  run_fork_test(test_redis_url(), "redis");
}

static void test_fork_unix(void **state) {
  (void)state;
  run_fork_test(test_redis_unix_url(), "unix");
}

static void test_fork_cluster(void **state) {
  (void)state;
  run_fork_test(test_cluster_url(), "cluster");
}

/* A hung child's stacks, when HTTPCACHE_TEST_GDB is set (gdb must be installed): what it waits on. */
static void dump_stacks(pid_t pid) {
  char cmd[128];
  if (!getenv("HTTPCACHE_TEST_GDB")) return;
  snprintf(cmd, sizeof cmd, "gdb -p %d -batch -ex 'thread apply all bt' 2>&1", (int)pid);
  fflush(stdout);
  if (system(cmd) != 0) printf("gdb failed\n");
}

/* Forks repeatedly while threads hammer the handle (stores, lookups, shared computations with
 * followers waiting on them), one opens handles over and over and one computes calendar TTLs, on
 * Redis, the cluster and memory://: a child must never inherit a lock (the library's, OpenSSL's
 * or ICU's) held by a thread that does not exist in it, nor wait for a computation such a thread
 * led. Each child makes a few calls of each kind, frees the handle and exits; a deadlocked child
 * is killed at the deadline and counted. */
static void test_fork_while_threads_hold_locks(void **state) {
  const char *urls[3];
  const char *names[3] = {"redis", "cluster", "memory"};
  (void)state;
  urls[0] = test_redis_url();
  urls[1] = test_cluster_url();
  urls[2] = "memory://";
  for (int u = 0; u < 3; ++u) {
    httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
    httpcache_cache *cache = NULL;
    pthread_t threads[PARENT_THREADS], churn_thread, zone_thread;
    worker workers[PARENT_THREADS], churn, zoner;
    volatile int stop = 0;
    long bad = 0;
    char ns[128];
    snprintf(ns, sizeof ns, "%s", test_unique_namespace("forklocks"));
    opts.command_timeout_ms = 10000;
    opts.connect_timeout_ms = 10000;
    opts.breaker_failures = 1000000;
    assert_int_equal(httpcache_cache_open(&cache, urls[u], ns, NULL, &opts), HTTPCACHE_OK);
    __atomic_store_n(&workers_running, 0, __ATOMIC_RELEASE);
    for (int t = 0; t < PARENT_THREADS; ++t) {
      workers[t] = (worker){.cache = cache, .id = t, .stop = &stop, .round = store_round};
      assert_int_equal(pthread_create(&threads[t], NULL, run_worker, &workers[t]), 0);
    }
    churn = (worker){.stop = &stop, .round = churn_round, .url = urls[u], .ns = ns, .opts = &opts};
    assert_int_equal(pthread_create(&churn_thread, NULL, run_worker, &churn), 0);
    zoner = (worker){.stop = &stop, .round = zone_round};
    assert_int_equal(pthread_create(&zone_thread, NULL, run_worker, &zoner), 0);
    wait_for_workers(PARENT_THREADS + 2);
    for (int round = 0; round < LOCK_ROUNDS; ++round) {
      pid_t pids[LOCK_FORKS_PER_ROUND];
      int64_t deadline;
      for (int k = 0; k < LOCK_FORKS_PER_ROUND; ++k) {
        pids[k] = fork_now();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
          counts c = {0, 0, 0, 0};
          char key[64];
          alarm(60);
          for (int n = 0; n < 5; ++n) {
            snprintf(key, sizeof key, "locks-child-%d-%d-%d", round, k, n);
            put(cache, key, &c);
            check_get(cache, key, &c);
            c.failed += compute_ttls((unsigned)(round + n));
            flight(cache, &c);
          }
          httpcache_cache_free(cache);
          _exit(c.wrong || c.missing || c.failed ? 1 : 0);
        }
        usleep((useconds_t)(rand() % 400)); /* the next fork lands elsewhere in the threads' work */
      }
      deadline = test_now_ms() + 20000;
      for (int k = 0; k < LOCK_FORKS_PER_ROUND; ++k) {
        int status;
        while (waitpid(pids[k], &status, WNOHANG) == 0) {
          if (test_now_ms() > deadline) {
            dump_stacks(pids[k]);
            kill(pids[k], SIGKILL);
            waitpid(pids[k], &status, 0);
            status = -1;
            break;
          }
          test_sleep_ms(2);
        }
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          printf("%s round %d, child %d: %s\n", names[u], round, k,
                 status == -1 ? "hung (killed)" : "failed");
          ++bad;
        }
      }
    }
    stop = 1;
    for (int t = 0; t < PARENT_THREADS; ++t) {
      pthread_join(threads[t], NULL);
      bad += workers[t].c.wrong + workers[t].c.missing + workers[t].c.failed;
    }
    pthread_join(churn_thread, NULL);
    pthread_join(zone_thread, NULL);
    printf("%s: during the forks, a thread opened %ld handles, another computed %ld TTL pairs\n",
           names[u], churn.c.calls / 2, zoner.c.calls);
    bad += churn.c.wrong + churn.c.missing + churn.c.failed + zoner.c.failed;
    httpcache_cache_free(cache);
    assert_int_equal(bad, 0);
  }
}

/* memory:// needs nothing: the child has its own copy of the store. */
static void test_fork_memory(void **state) {
  httpcache_cache *cache = NULL;
  counts c = {0, 0, 0, 0};
  int status;
  pid_t pid;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "forkmem", NULL, NULL), HTTPCACHE_OK);
  put(cache, "k", &c);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    counts cc = {0, 0, 0, 0};
    alarm(60);
    check_get(cache, "k", &cc);
    put(cache, "child", &cc);
    check_get(cache, "child", &cc);
    httpcache_cache_free(cache);
    _exit(cc.wrong || cc.missing || cc.failed ? 1 : 0);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  check_get(cache, "k", &c);
  assert_int_equal(c.wrong + c.missing + c.failed, 0);
  httpcache_cache_free(cache);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fork_memory),
      cmocka_unit_test(test_fork_redis),
      cmocka_unit_test(test_fork_unix),
      cmocka_unit_test(test_fork_cluster),
      cmocka_unit_test(test_fork_while_threads_hold_locks),
  };
  signal(SIGPIPE, SIG_IGN);
  gate_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
