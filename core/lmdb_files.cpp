// SPDX-License-Identifier: MIT
// lmdb_files.hpp on POSIX: mkdir/stat, flock, the kernel's boot_id, fsync'ed renames.
#include "lmdb_files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "error.hpp"

namespace httpcache::lmdb_files {

std::pair<std::uint64_t, std::uint64_t> ensure_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    throw backend_error(errc::backend, fmt::format("lmdb://{}: cannot create the directory: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw backend_error(errc::backend, fmt::format("lmdb://{}: not a directory", path));
  if (st.st_uid != ::geteuid())
    throw error(errc::invalid, fmt::format("lmdb://{}: owned by uid {}, not by this process's uid {}", path,
                                           static_cast<unsigned>(st.st_uid), static_cast<unsigned>(::geteuid())));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    throw error(errc::invalid, fmt::format("lmdb://{}: writable by group or others (chmod go-w)", path));
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

file_lock::file_lock(const std::string& name) {
  const int fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw backend_error(errc::backend, fmt::format("cannot open {}: {}", name, std::strerror(errno)));
  int rc;
  while ((rc = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    const int saved = errno;
    ::close(fd);
    throw backend_error(errc::backend, fmt::format("cannot lock {}: {}", name, std::strerror(saved)));
  }
  handle_ = fd;
}

file_lock::~file_lock() { ::close(static_cast<int>(handle_)); }

std::string boot_id() { return read_small_file("/proc/sys/kernel/random/boot_id"); }

std::string read_small_file(const std::string& name) {
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

void write_durably(const std::string& name, const std::string& text) {
  const std::string tmp = name + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int saved = errno;
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), name.c_str()) == 0;
  if (!ok) {
    ::unlink(tmp.c_str());
    throw backend_error(errc::backend, fmt::format("cannot write {}: {}", name, std::strerror(errno ? errno : saved)));
  }
  const std::string dir = name.substr(0, name.rfind('/'));
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void remove_file(const std::string& name) noexcept { ::unlink(name.c_str()); }

}  // namespace httpcache::lmdb_files
