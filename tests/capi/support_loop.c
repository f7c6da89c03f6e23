/* SPDX-License-Identifier: MIT
 * The tests' host loop for the non-blocking API (support.h). Apart from support.c: test_dlopen
 * links no httpcache symbol, and these call the library. */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>

#include "support.h"

void test_loop_watch(httpcache_fd fd, uint32_t events, void *payload) {
  test_loop *l = payload;
  ++l->watch_calls;
  if (events & HTTPCACHE_EV_WRITE) ++l->write_asks;
  if (events == 0) {
    if (l->fd == fd) {
      l->fd = -1;
      l->events = 0;
    }
    return;
  }
  l->fd = fd;
  l->events = events;
}

size_t test_loop_run(test_loop *l, httpcache_async *ctx, int deadline_ms) {
  int64_t end = test_now_ms() + deadline_ms;
  while (httpcache_async_pending(ctx) > 0 && test_now_ms() < end) {
    struct pollfd p = {l->fd, 0, 0};
    int64_t wait = httpcache_async_timeout_ms(ctx);
    uint32_t ready = 0;
    if (wait < 0 || wait > 50) wait = 50;
    if (l->events & HTTPCACHE_EV_READ) p.events |= POLLIN;
    if (l->events & HTTPCACHE_EV_WRITE) p.events |= POLLOUT;
    if (l->fd >= 0 && poll(&p, 1, (int)wait) > 0) {
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) ready |= HTTPCACHE_EV_READ;
      if (p.revents & (POLLOUT | POLLERR)) ready |= HTTPCACHE_EV_WRITE;
    } else if (l->fd < 0) {
      test_sleep_ms((int)wait);
    }
    if (httpcache_async_process(ctx, ready) != HTTPCACHE_OK) ++l->process_errors;
  }
  return httpcache_async_pending(ctx);
}
