// SPDX-License-Identifier: MIT
// Internal to core/: what fork() means for our connections, sessions, stores, locks and threads.
//
// A child process inherits copies of every socket, but the same connection on the server: if
// parent and child both used it, each would read replies meant for the other (other keys' values).
// So each connection and non-blocking session records the process that made it (current_pid())
// and a process that did not make it never reads or writes it: it drops its copy without any I/O
// (closing our descriptor leaves the parent's open; no QUIT is sent) and connects anew.
//
// The locks that guard pools and slot maps are taken by a pthread_atfork prepare handler and
// released on both sides after fork (fork_registration), so a child never inherits one held by a
// thread that does not exist in it, nor a structure in mid-update. Threads are not inherited:
// the cluster's refresher is abandoned in the child and started there again when needed. Calls into
// OpenSSL and ICU, whose own locks no fork handler releases, are fork_fence sections: fork() waits
// for those under way.
#pragma once

#include <sys/types.h>

#include <atomic>

namespace httpcache::detail {

// This process's id, read from a cached value: getpid() is a system call on glibc >= 2.25. A
// pthread_atfork child handler updates the cache, so comparing against it costs one load.
pid_t current_pid() noexcept;

// An object with locks to hold across fork(). before_fork() takes them (in the forking thread);
// after_fork_parent() and after_fork_child() release them on each side. after_fork_child() runs
// while the child has a single thread, so it may also reset what no other thread can use then.
class fork_participant {
 public:
  virtual void before_fork() noexcept = 0;
  virtual void after_fork_parent() noexcept = 0;
  virtual void after_fork_child() noexcept = 0;

 protected:
  ~fork_participant() = default;
};

// A stretch of code fork() must not cut in two: a call into a library that takes locks of its own
// while it works and releases none of them for fork (OpenSSL 3: its method store, its random
// generator, each SSL_CTX; ICU: its zone and locale data). A child forked while a thread was
// inside would inherit such a lock held by a thread it does not have, and wait on it forever
// (at its first TLS handshake, say). So fork()'s prepare handler, once every participant's locks
// are taken, waits until no thread is inside a section, and new sections wait for the fork. A
// section must be short (non-blocking calls, never a wait on the network) and must take no lock a
// participant's before_fork() takes; sections may nest in one thread. A section costs two atomic
// operations (on Windows, which has no fork(), they guard nothing).
class fork_fence {
 public:
  fork_fence() noexcept;
  ~fork_fence();
  fork_fence(const fork_fence&) = delete;
  fork_fence& operator=(const fork_fence&) = delete;
};

// Registers a participant for its lifetime. Declare it as the owner's last member: it is then
// registered once everything it locks exists, and unregistered before any of it is destroyed.
// Must not be constructed or destroyed while holding a lock that before_fork() of any
// participant takes (the prepare handler holds the registry while taking those).
class fork_registration {
 public:
  explicit fork_registration(fork_participant& p);
  ~fork_registration();
  fork_registration(const fork_registration&) = delete;
  fork_registration& operator=(const fork_registration&) = delete;

 private:
  fork_participant& participant_;
};

}  // namespace httpcache::detail
