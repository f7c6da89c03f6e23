// SPDX-License-Identifier: MIT
// The pid cache, the pthread_atfork handlers and the fence of core/ (see fork.hpp). On Windows,
// which has no fork(), the pid is cached once and the handlers are never installed.
#include "fork.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace httpcache::detail {

namespace {

std::atomic<pid_t> cached_pid{::getpid()};

// Never destroyed: a participant may outlive static destruction (a handle freed from an atexit
// handler), and a fork may come from any thread until the process ends.
struct registry {
  std::mutex mutex;
  std::vector<fork_participant*> participants;
};

// The fence: sections count themselves in `inside`; fork()'s prepare handler raises `forking`,
// then waits for `inside` to reach 0. Both sides write, then read the other's word (sequentially
// consistent), so either a section sees the fork coming and steps back, or the fork sees it and
// waits. A section that stepped back waits on `gate`, which the forking thread holds until fork()
// returns on its side. (A glibc rwlock would do the same but records its writer's thread id, which
// a child's one thread does not have: it could not be released there, only made anew, and
// ThreadSanitizer cannot follow a lock made anew over a held one.)
std::atomic<int> inside{0};
std::atomic<bool> forking{false};
std::mutex gate;
thread_local unsigned fence_depth = 0;  // sections nest: only the outermost counts

void raise_fence() noexcept {
  gate.lock();
  forking.store(true);
  for (int spins = 0; inside.load() != 0; ++spins) {
    if (spins < 64) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void lower_fence() noexcept {
  forking.store(false);
  gate.unlock();
}

void prepare() noexcept;
void in_parent() noexcept;
void in_child() noexcept;

registry& the_registry() {
  static registry* r = [] {
    auto* made = new registry;
#ifndef _WIN32  // Windows has no fork(): participants are listed, never called
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
  raise_fence();
}

void in_parent() noexcept {
  registry& r = the_registry();
  lower_fence();
  for (auto it = r.participants.rbegin(); it != r.participants.rend(); ++it) (*it)->after_fork_parent();
  r.mutex.unlock();
}

void in_child() noexcept {
  cached_pid.store(::getpid(), std::memory_order_relaxed);
  registry& r = the_registry();
  // The child's one thread raised the fence and is inside no section; a count a vanished thread
  // left (raised just before it stepped back) is not the child's.
  inside.store(0);
  lower_fence();
  for (auto it = r.participants.rbegin(); it != r.participants.rend(); ++it) (*it)->after_fork_child();
  r.mutex.unlock();
}

// The handlers are installed when the library loads, so the pid cache is right in every child,
// whether or not a participant existed at the time of its fork.
[[maybe_unused]] const bool installed = (the_registry(), true);

}  // namespace

pid_t current_pid() noexcept { return cached_pid.load(std::memory_order_relaxed); }

fork_fence::fork_fence() noexcept {
  if (fence_depth++ != 0) return;
  for (;;) {
    inside.fetch_add(1);
    if (!forking.load()) return;
    inside.fetch_sub(1);  // a fork is coming: let it go first
    std::lock_guard<std::mutex> wait_for_it(gate);
  }
}

fork_fence::~fork_fence() {
  if (--fence_depth == 0) inside.fetch_sub(1);
}

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
