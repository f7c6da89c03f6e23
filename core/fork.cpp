// SPDX-License-Identifier: MIT
// The pid cache and the pthread_atfork handlers of core/redis/ (see fork.hpp). On Windows, which
// has no fork(), the pid is cached once and the handlers are never installed.
#include "fork.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace httpcache::detail {

namespace {

std::atomic<pid_t> cached_pid{::getpid()};

// Never destroyed: a participant may outlive static destruction (a handle freed from an atexit
// handler), and a fork may come from any thread until the process ends.
struct registry {
  std::mutex mutex;
  std::vector<fork_participant*> participants;
#ifndef _WIN32
  // Readers are fork_fence sections, the writer is fork()'s prepare handler. Writer-preferring,
  // so a fork is not starved by sections that keep overlapping; a reader never takes it twice
  // (fence_depth), which that kind of lock would not allow while a writer waits.
  pthread_rwlock_t fence;
#endif
};

#ifndef _WIN32
thread_local unsigned fence_depth = 0;

void make_fence(pthread_rwlock_t& fence) {
  pthread_rwlockattr_t kind;
  pthread_rwlockattr_init(&kind);
  pthread_rwlockattr_setkind_np(&kind, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&fence, &kind);
  pthread_rwlockattr_destroy(&kind);
}
#endif

void prepare() noexcept;
void in_parent() noexcept;
void in_child() noexcept;

registry& the_registry() {
  static registry* r = [] {
    auto* made = new registry;
#ifndef _WIN32  // Windows has no fork(): participants are listed, never called
    make_fence(made->fence);
    pthread_atfork(&prepare, &in_parent, &in_child);
#endif
    return made;
  }();
  return *r;
}

// Holds the registry from prepare to parent/child, so no participant comes or goes meanwhile.
// The fence is taken last: a thread inside a section takes no participant's lock, while one
// holding a participant's lock may be about to enter a section.
void prepare() noexcept {
  registry& r = the_registry();
  r.mutex.lock();
  for (fork_participant* p : r.participants) p->before_fork();
#ifndef _WIN32
  pthread_rwlock_wrlock(&r.fence);
#endif
}

void in_parent() noexcept {
  registry& r = the_registry();
#ifndef _WIN32
  pthread_rwlock_unlock(&r.fence);
#endif
  for (auto it = r.participants.rbegin(); it != r.participants.rend(); ++it) (*it)->after_fork_parent();
  r.mutex.unlock();
}

void in_child() noexcept {
  cached_pid.store(::getpid(), std::memory_order_relaxed);
  registry& r = the_registry();
#ifndef _WIN32
  // A glibc rwlock records its writer's thread id, which the child's one thread does not have:
  // it is made anew over the held one (never destroyed: destroying a held rwlock is undefined).
  make_fence(r.fence);
#endif
  for (auto it = r.participants.rbegin(); it != r.participants.rend(); ++it) (*it)->after_fork_child();
  r.mutex.unlock();
}

// The handlers are installed when the library loads, so the pid cache is right in every child,
// whether or not a participant existed at the time of its fork.
[[maybe_unused]] const bool installed = (the_registry(), true);

}  // namespace

pid_t current_pid() noexcept { return cached_pid.load(std::memory_order_relaxed); }

#ifndef _WIN32
fork_fence::fork_fence() noexcept {
  if (fence_depth++ == 0) pthread_rwlock_rdlock(&the_registry().fence);
}

fork_fence::~fork_fence() {
  if (--fence_depth == 0) pthread_rwlock_unlock(&the_registry().fence);
}
#else
fork_fence::fork_fence() noexcept = default;
fork_fence::~fork_fence() = default;
#endif

fork_registration::fork_registration(fork_participant& p) : participant_(p) {
  registry& r = the_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.participants.push_back(&p);
}

fork_registration::~fork_registration() {
  registry& r = the_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.participants.erase(std::remove(r.participants.begin(), r.participants.end(), &participant_), r.participants.end());
}

}  // namespace httpcache::detail
