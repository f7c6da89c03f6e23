/* SPDX-License-Identifier: MIT
 * What only the Windows build has to show (tests/windows.cmake, under Wine):
 * - the DLL loaded at run time with LoadLibrary/GetProcAddress (the twin of test_dlopen): its
 *   version, a memory:// and a Redis round trip, the time zone data, the last error;
 * - lmdb:// on Windows: two handles of one process share the store, another process (this
 *   program started again with CreateProcess) reads what this one wrote and writes back, an
 *   invalidation is seen by both, the store outlives its handles, and a bad directory is refused;
 * - the Winsock transport's failures: a refused connection and a server that accepts but never
 *   answers fail within their timeouts, and get_or_compute fails open (test_open's POSIX-only
 *   cases, over Winsock).
 * The key's own tests (test_keys, test_ttl, test_async, ...) run unchanged beside it. */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

/* ---- the DLL at run time ---- */

typedef const char *(*version_fn)(void);
typedef int (*open_fn)(httpcache_cache **, const char *, const char *, const char *, const httpcache_options *);
typedef void (*free_fn)(httpcache_cache *);
typedef int (*set_fn)(int64_t *, httpcache_cache *, const void *, size_t, const void *, size_t, const httpcache_ttl_policy *);
typedef int (*get_fn)(httpcache_buf *, int64_t *, httpcache_cache *, const void *, size_t);
typedef void (*dispose_fn)(httpcache_buf *);
typedef const httpcache_error *(*last_fn)(void);

typedef void (*any_fn)(void); /* what a function pointer is cast through */

static any_fn must_find(HMODULE dll, const char *name) {
  FARPROC f = GetProcAddress(dll, name);
  if (!f) fail_msg("GetProcAddress(%s) failed: %lu", name, (unsigned long)GetLastError());
  return (any_fn)f;
}

static void round_trip(HMODULE dll, const char *url) {
  open_fn open = (open_fn)must_find(dll, "httpcache_cache_open");
  free_fn close = (free_fn)must_find(dll, "httpcache_cache_free");
  set_fn set = (set_fn)must_find(dll, "httpcache_cache_set");
  get_fn get = (get_fn)must_find(dll, "httpcache_cache_get");
  dispose_fn dispose = (dispose_fn)must_find(dll, "httpcache_buf_dispose");
  httpcache_cache *c = NULL;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int64_t ttl = 0;
  assert_int_equal(open(&c, url, test_unique_namespace("dll"), "Europe/London", NULL), HTTPCACHE_OK);
  assert_int_equal(set(NULL, c, "k", 1, "from the dll", 12, &one_minute), HTTPCACHE_OK);
  assert_int_equal(get(&v, &ttl, c, "k", 1), HTTPCACHE_OK);
  assert_int_equal(v.size, 12);
  assert_memory_equal(v.ptr, "from the dll", 12);
  assert_true(ttl > 55000 && ttl <= 60000);
  dispose(&v);
  close(c);
}

static void test_windows_loadlibrary(void **state) {
  HMODULE dll = LoadLibraryA(HTTPCACHE_DLL_PATH);
  (void)state;
  if (!dll) fail_msg("LoadLibrary(%s) failed: %lu", HTTPCACHE_DLL_PATH, (unsigned long)GetLastError());
  assert_string_equal(((version_fn)must_find(dll, "httpcache_version_string"))(), HTTPCACHE_VERSION_STRING);
  assert_int_equal(strlen(((version_fn)must_find(dll, "httpcache_tzdata_version"))()), 5);
  round_trip(dll, "memory://");
  round_trip(dll, test_redis_url());
  /* A bad URL: the status code, and a message through the DLL's own last-error slot. */
  {
    open_fn open = (open_fn)must_find(dll, "httpcache_cache_open");
    last_fn last = (last_fn)must_find(dll, "httpcache_error_last");
    httpcache_cache *c = NULL;
    assert_int_equal(open(&c, "ftp://nowhere", "ns", NULL, NULL), HTTPCACHE_EINVALID);
    assert_non_null(strstr(last()->message, "ftp"));
  }
  /* Only the C API is exported (tests/windows.cmake checks the export table too). */
  assert_null(GetProcAddress(dll, "mdb_env_open"));
  assert_null(GetProcAddress(dll, "ucal_open_72"));
  assert_true(FreeLibrary(dll));
}

/* ---- lmdb:// ---- */

static char program[MAX_PATH];

static void store_dir(char *out, size_t cap) {
  char tmp[MAX_PATH];
  DWORD n = GetTempPathA(sizeof tmp, tmp);
  assert_true(n > 0 && n < sizeof tmp);
  snprintf(out, cap, "%shttpcache-lmdb-%lu-%lu", tmp, (unsigned long)GetCurrentProcessId(), (unsigned long)GetTickCount());
  for (char *p = out; *p; ++p)
    if (*p == '\\') *p = '/';
}

static httpcache_cache *open_lmdb(const char *dir) {
  char url[600];
  httpcache_cache *c = NULL;
  snprintf(url, sizeof url, "lmdb:///%s?max_bytes=4194304", dir);
  if (httpcache_cache_open(&c, url, "win", NULL, NULL) != HTTPCACHE_OK) fail_msg("open %s: %s", url, httpcache_error_last()->message);
  return c;
}

static void expect(httpcache_cache *c, const char *key, const char *want) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get(&v, NULL, c, key, strlen(key));
  if (!want) {
    assert_int_equal(rc, HTTPCACHE_ENOTFOUND);
  } else {
    assert_int_equal(rc, HTTPCACHE_OK);
    assert_int_equal(v.size, strlen(want));
    assert_memory_equal(v.ptr, want, v.size);
  }
  httpcache_buf_dispose(&v);
}

/* The child: reads "parent" and answers under "child". */
static int child_main(const char *dir) {
  httpcache_cache *c = open_lmdb(dir);
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int ok = httpcache_cache_get(&v, NULL, c, "parent", 6) == HTTPCACHE_OK && v.size == 5 && memcmp(v.ptr, "hello", 5) == 0;
  httpcache_buf_dispose(&v);
  if (ok) ok = httpcache_cache_set(NULL, c, "child", 5, "seen it", 7, &one_minute) == HTTPCACHE_OK;
  httpcache_cache_free(c);
  return ok ? 0 : 3;
}

static void test_windows_lmdb_shared(void **state) {
  char dir[MAX_PATH], cmd[3 * MAX_PATH];
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  DWORD code = 99;
  httpcache_cache *a, *b;
  const void *keys[] = {"child"};
  size_t lens[] = {5};
  (void)state;
  store_dir(dir, sizeof dir);
  a = open_lmdb(dir);
  b = open_lmdb(dir);
  assert_int_equal(httpcache_cache_set(NULL, a, "parent", 6, "hello", 5, &one_minute), HTTPCACHE_OK);
  expect(b, "parent", "hello");

  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  snprintf(cmd, sizeof cmd, "\"%s\" child \"%s\"", program, dir);
  assert_true(CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi));
  assert_int_equal(WaitForSingleObject(pi.hProcess, 60000), WAIT_OBJECT_0);
  assert_true(GetExitCodeProcess(pi.hProcess, &code));
  CloseHandle(pi.hProcess);
  CloseHandle(pi.hThread);
  assert_int_equal(code, 0);
  expect(a, "child", "seen it");
  expect(b, "child", "seen it");

  assert_int_equal(httpcache_cache_invalidate(NULL, b, keys, lens, 1), HTTPCACHE_OK);
  expect(a, "child", NULL);
  httpcache_cache_free(a);
  httpcache_cache_free(b);
  a = open_lmdb(dir); /* the store outlives its handles */
  expect(a, "parent", "hello");
  httpcache_cache_free(a);
}

static void test_windows_lmdb_bad_directory(void **state) {
  char file[MAX_PATH], url[700];
  httpcache_cache *c = NULL;
  FILE *f;
  (void)state;
  store_dir(file, sizeof file);
  f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(url, sizeof url, "lmdb:///%s", file);
  assert_int_not_equal(httpcache_cache_open(&c, url, "win", NULL, NULL), HTTPCACHE_OK);
  assert_null(c);
  assert_non_null(strstr(httpcache_error_last()->message, "not a directory"));
  remove(file);
  /* A path without a drive would depend on the current drive: refused, naming the form. */
  assert_int_equal(httpcache_cache_open(&c, "lmdb:///cache/app", "win", NULL, NULL), HTTPCACHE_EINVALID);
  assert_null(c);
  assert_non_null(strstr(httpcache_error_last()->message, "lmdb:///C:/cache/app"));
}

/* ---- the transport's failures ---- */

static int compute_hello(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  ++*(int *)payload;
  return httpcache_buf_set(out, "hello", 6);
}

/* A get on url with these timeouts: its status into *rc, how long it took as the result. */
static int64_t timed_get(const char *url, int connect_ms, int command_ms, int *rc) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int64_t started;
  opts.connect_timeout_ms = (uint32_t)connect_ms;
  opts.command_timeout_ms = (uint32_t)command_ms;
  assert_int_equal(httpcache_cache_open(&c, url, "win", NULL, &opts), HTTPCACHE_OK);
  started = test_now_ms();
  *rc = httpcache_cache_get(&v, NULL, c, "k", 1);
  started = test_now_ms() - started;
  httpcache_buf_dispose(&v);
  httpcache_cache_free(c);
  return started;
}

static void test_windows_refused_and_silent_servers(void **state) {
  char url[128];
  int port, rc, calls = 0;
  int silent = test_silent_listener(64, &port); /* accepts in the kernel, never answers */
  int64_t ms;
  httpcache_cache *c = NULL;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_HIT;
  (void)state;
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  ms = timed_get(url, 1000, 300, &rc);
  assert_int_equal(rc, HTTPCACHE_ETIMEOUT);
  if (ms < 250 || ms > 2000) fail_msg("a silent server with command_timeout_ms=300: %lld ms", (long long)ms);
  assert_non_null(strstr(httpcache_error_last()->message, "127.0.0.1"));

  closesocket((SOCKET)silent); /* now nothing listens there: refused */
  ms = timed_get(url, 1000, 1000, &rc);
  assert_int_equal(rc, HTTPCACHE_EBACKEND);
  if (ms > 2000) fail_msg("a refused connection took %lld ms", (long long)ms);

  assert_int_equal(httpcache_cache_open(&c, url, "win", NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get_or_compute(&v, NULL, &outcome, c, "k", 1, &one_minute, compute_hello, &calls),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED); /* the outage never fails the caller */
  assert_int_equal(calls, 1);
  assert_string_equal(v.ptr, "hello");
  httpcache_buf_dispose(&v);
  httpcache_cache_free(c);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_windows_loadlibrary),
      cmocka_unit_test(test_windows_lmdb_shared),
      cmocka_unit_test(test_windows_lmdb_bad_directory),
      cmocka_unit_test(test_windows_refused_and_silent_servers),
  };
  if (argc == 3 && strcmp(argv[1], "child") == 0) return child_main(argv[2]);
  assert_true(GetModuleFileNameA(NULL, program, sizeof program) > 0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
