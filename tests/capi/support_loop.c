/* SPDX-License-Identifier: MIT
 * The tests' host loop for the non-blocking API (support.h). Apart from support.c: test_dlopen
 * links no httpcache symbol, and these call the library. */
#define _POSIX_C_SOURCE 200809L
#ifdef _WIN32
#include <winsock2.h>
#define poll WSAPoll
typedef WSAPOLLFD pollfd_t;
#else
#include <poll.h>
typedef struct pollfd pollfd_t;
#endif

#include "support.h"

void test_loop_watch(httpcache_fd fd, uint32_t events, void *payload) {
  test_loop *l = payload;
  int i = 0;
  ++l->watch_calls;
  if (events & HTTPCACHE_EV_WRITE) ++l->write_asks;
  while (i < l->nwatched && l->watched[i] != fd) ++i;
  if (events == 0) {
    if (i < l->nwatched) {
      l->watched[i] = l->watched[l->nwatched - 1];
      l->watched_events[i] = l->watched_events[l->nwatched - 1];
      --l->nwatched;
    }
    if (l->fd == (int)fd) {
      l->fd = -1;
      l->events = 0;
    }
    return;
  }
  if (i == l->nwatched && i < (int)(sizeof l->watched / sizeof l->watched[0])) ++l->nwatched;
  if (i < l->nwatched) {
    l->watched[i] = fd;
    l->watched_events[i] = events;
  }
  l->fd = (int)fd;
  l->events = events;
}

size_t test_loop_run(test_loop *l, httpcache_async *ctx, int deadline_ms) {
  int64_t end = test_now_ms() + deadline_ms;
  while (httpcache_async_pending(ctx) > 0 && test_now_ms() < end) {
    pollfd_t p[16];
    int64_t wait = httpcache_async_timeout_ms(ctx);
    uint32_t ready = 0;
    int n = l->nwatched;
    if (wait < 0 || wait > 50) wait = 50;
    for (int i = 0; i < n; ++i) {
      p[i].fd = l->watched[i];
      p[i].events = 0;
      p[i].revents = 0;
      if (l->watched_events[i] & HTTPCACHE_EV_READ) p[i].events |= POLLIN;
      if (l->watched_events[i] & HTTPCACHE_EV_WRITE) p[i].events |= POLLOUT;
    }
    if (n > 0 && poll(p, (unsigned)n, (int)wait) > 0) {
      for (int i = 0; i < n; ++i) {
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) ready |= HTTPCACHE_EV_READ;
        if (p[i].revents & (POLLOUT | POLLERR)) ready |= HTTPCACHE_EV_WRITE;
      }
    } else if (n == 0) {
      test_sleep_ms((int)wait);
    }
    if (httpcache_async_process(ctx, ready) != HTTPCACHE_OK) ++l->process_errors;
  }
  return httpcache_async_pending(ctx);
}
