// SPDX-License-Identifier: MIT
// The file-system calls of lmdb:// (lmdb_backend.cpp) that differ between POSIX (lmdb_files.cpp)
// and Windows (lmdb_files_win.cpp): the store's directory, its open lock, the boot id that tells
// a store written before the last OS crash, and small files written so a crash leaves the old or
// the new text whole.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace httpcache::lmdb_files {

// Creates `path` when missing and checks it: a directory, owned by this process's user, which
// no one else may write to (whoever can write there can plant entries every process serves).
// Returns its identity (device and inode, or volume and file index), the same through any
// name. Throws error(errc::invalid) for a refused directory, backend_error otherwise.
std::pair<std::uint64_t, std::uint64_t> ensure_directory(const std::string& path);

// An exclusive lock of a file (created when missing), held while the object lives: openers of
// one store take turns. Throws backend_error when the file cannot be opened or locked.
class file_lock {
 public:
  explicit file_lock(const std::string& name);
  ~file_lock();
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;

 private:
  std::intptr_t handle_;
};

// This boot of the OS, as a string that differs after every reboot; "" when unknown.
std::string boot_id();
// The first bytes of a small file; "" when it cannot be read.
std::string read_small_file(const std::string& name);
// Writes `text` to `name` through a temporary file, both flushed to disk with their directory,
// so the name holds the whole text or its former content after any crash.
void write_durably(const std::string& name, const std::string& text);
// Removes a file; a missing one is no error.
void remove_file(const std::string& name) noexcept;

}  // namespace httpcache::lmdb_files
