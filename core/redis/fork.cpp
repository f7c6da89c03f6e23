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
};

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
void prepare() noexcept {
  registry& r = the_registry();
  r.mutex.lock();
  for (fork_participant* p : r.participants) p->before_fork();
}

void in_parent() noexcept {
  registry& r = the_registry();
  for (auto it = r.participants.rbegin(); it != r.participants.rend(); ++it) (*it)->after_fork_parent();
  r.mutex.unlock();
}

void in_child() noexcept {
  cached_pid.store(::getpid(), std::memory_order_relaxed);
  registry& r = the_registry();
  for (auto it = r.participants.rbegin(); it != r.participants.rend(); ++it) (*it)->after_fork_child();
  r.mutex.unlock();
}

// The handlers are installed when the library loads, so the pid cache is right in every child,
// whether or not a participant existed at the time of its fork.
[[maybe_unused]] const bool installed = (the_registry(), true);

}  // namespace

pid_t current_pid() noexcept { return cached_pid.load(std::memory_order_relaxed); }

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
