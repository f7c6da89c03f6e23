// SPDX-License-Identifier: MIT
// lmdb_files.hpp on Windows: CreateDirectory and the directory's owner and DACL, LockFileEx, the
// kernel's BootId, FlushFileBuffers and MoveFileEx(WRITE_THROUGH).
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include "lmdb_files.hpp"

#include <fmt/format.h>

#include <memory>
#include <vector>

#include "error.hpp"

namespace httpcache::lmdb_files {

namespace {

std::string last_error_text() {
  const DWORD err = GetLastError();
  char buf[256] = {0};
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, err,
                           MAKELANGID(LANG_ENGLISH, SUBLANG_DEFAULT), buf, sizeof(buf), nullptr);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.')) --n;
  return n ? std::string(buf, n) : fmt::format("error {}", err);
}

struct handle_closer {
  void operator()(void* h) const noexcept {
    if (h && h != INVALID_HANDLE_VALUE) CloseHandle(h);
  }
};
using unique_handle = std::unique_ptr<void, handle_closer>;

// The user this process runs as (its token's SID), copied into `out`.
bool process_user(std::vector<unsigned char>& out) {
  HANDLE token = nullptr;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return false;
  unique_handle owned(token);
  DWORD size = 0;
  GetTokenInformation(token, TokenUser, nullptr, 0, &size);
  std::vector<unsigned char> buf(size);
  if (size == 0 || !GetTokenInformation(token, TokenUser, buf.data(), size, &size)) return false;
  PSID sid = reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid;
  out.assign(static_cast<unsigned char*>(sid), static_cast<unsigned char*>(sid) + GetLengthSid(sid));
  return true;
}

std::string sid_text(PSID sid) {
  LPSTR text = nullptr;
  if (!ConvertSidToStringSidA(sid, &text)) return "?";
  std::string out(text);
  LocalFree(text);
  return out;
}

// Whether the DACL lets anyone but `owner` (and the system's own accounts) write into the
// directory: an access-allowed entry with a write right for another SID.
bool others_may_write(PACL dacl, PSID owner) {
  if (!dacl) return true;  // no DACL: everyone has every right
  PSID system_sid = nullptr, admins_sid = nullptr;
  SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
  AllocateAndInitializeSid(&nt, 1, SECURITY_LOCAL_SYSTEM_RID, 0, 0, 0, 0, 0, 0, 0, &system_sid);
  AllocateAndInitializeSid(&nt, 2, SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS, 0, 0, 0, 0, 0, 0, &admins_sid);
  bool others = false;
  constexpr ACCESS_MASK write_rights = FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY | FILE_DELETE_CHILD | GENERIC_WRITE |
                                       GENERIC_ALL | WRITE_DAC | WRITE_OWNER;
  for (DWORD i = 0; i < dacl->AceCount && !others; ++i) {
    void* ace = nullptr;
    if (!GetAce(dacl, i, &ace)) continue;
    auto* header = static_cast<ACE_HEADER*>(ace);
    if (header->AceType != ACCESS_ALLOWED_ACE_TYPE || (header->AceFlags & INHERIT_ONLY_ACE)) continue;
    auto* allowed = static_cast<ACCESS_ALLOWED_ACE*>(ace);
    PSID who = &allowed->SidStart;
    if (!(allowed->Mask & write_rights)) continue;
    if (EqualSid(who, owner) || (system_sid && EqualSid(who, system_sid)) || (admins_sid && EqualSid(who, admins_sid)))
      continue;
    others = true;
  }
  if (system_sid) FreeSid(system_sid);
  if (admins_sid) FreeSid(admins_sid);
  return others;
}

}  // namespace

std::pair<std::uint64_t, std::uint64_t> ensure_directory(const std::string& path) {
  if (!CreateDirectoryA(path.c_str(), nullptr) && GetLastError() != ERROR_ALREADY_EXISTS)
    throw backend_error(errc::backend, fmt::format("lmdb://{}: cannot create the directory: {}", path, last_error_text()));
  unique_handle dir(CreateFileA(path.c_str(), READ_CONTROL | FILE_READ_ATTRIBUTES,
                                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                                FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  BY_HANDLE_FILE_INFORMATION info{};
  if (dir.get() == INVALID_HANDLE_VALUE || !GetFileInformationByHandle(dir.get(), &info) ||
      !(info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))
    throw backend_error(errc::backend, fmt::format("lmdb://{}: not a directory", path));
  PSID owner = nullptr;
  PACL dacl = nullptr;
  PSECURITY_DESCRIPTOR sd = nullptr;
  if (GetSecurityInfo(dir.get(), SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
                      nullptr, &dacl, nullptr, &sd) != ERROR_SUCCESS)
    throw backend_error(errc::backend, fmt::format("lmdb://{}: cannot read its owner and permissions", path));
  std::unique_ptr<void, decltype(&LocalFree)> sd_owned(sd, &LocalFree);
  std::vector<unsigned char> me;
  if (!process_user(me)) throw backend_error(errc::backend, "cannot tell which user this process runs as");
  if (!EqualSid(owner, me.data()))
    throw error(errc::invalid, fmt::format("lmdb://{}: owned by {}, not by this process's user {}", path,
                                           sid_text(owner), sid_text(me.data())));
  if (others_may_write(dacl, owner))
    throw error(errc::invalid, fmt::format("lmdb://{}: writable by other users (remove their write access)", path));
  return {info.dwVolumeSerialNumber, (static_cast<std::uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow};
}

file_lock::file_lock(const std::string& name) {
  HANDLE h = CreateFileA(name.c_str(), GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                         OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) throw backend_error(errc::backend, fmt::format("cannot open {}: {}", name, last_error_text()));
  OVERLAPPED at{};
  if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &at)) {
    const std::string why = last_error_text();
    CloseHandle(h);
    throw backend_error(errc::backend, fmt::format("cannot lock {}: {}", name, why));
  }
  handle_ = reinterpret_cast<std::intptr_t>(h);
}

file_lock::~file_lock() {
  HANDLE h = reinterpret_cast<HANDLE>(handle_);
  OVERLAPPED at{};
  UnlockFileEx(h, 0, 1, 0, &at);
  CloseHandle(h);
}

// The kernel counts boots in this value (Windows 8 and later); without it, "" (unknown).
std::string boot_id() {
  DWORD value = 0, size = sizeof(value);
  if (RegGetValueA(HKEY_LOCAL_MACHINE, "SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management\\PrefetchParameters",
                   "BootId", RRF_RT_REG_DWORD, nullptr, &value, &size) != ERROR_SUCCESS)
    return {};
  return fmt::format("{}\n", value);
}

std::string read_small_file(const std::string& name) {
  unique_handle h(CreateFileA(name.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                              nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (h.get() == INVALID_HANDLE_VALUE) return {};
  char buf[128];
  DWORD n = 0;
  if (!ReadFile(h.get(), buf, sizeof buf, &n, nullptr)) return {};
  return std::string(buf, n);
}

void write_durably(const std::string& name, const std::string& text) {
  const std::string tmp = name + ".tmp";
  DeleteFileA(tmp.c_str());
  bool ok = false;
  {
    unique_handle h(CreateFileA(tmp.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr));
    DWORD n = 0;
    ok = h.get() != INVALID_HANDLE_VALUE && WriteFile(h.get(), text.data(), static_cast<DWORD>(text.size()), &n, nullptr) &&
         n == text.size() && FlushFileBuffers(h.get());
  }
  ok = ok && MoveFileExA(tmp.c_str(), name.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
  if (!ok) {
    const std::string why = last_error_text();
    DeleteFileA(tmp.c_str());
    throw backend_error(errc::backend, fmt::format("cannot write {}: {}", name, why));
  }
}

void remove_file(const std::string& name) noexcept { DeleteFileA(name.c_str()); }

}  // namespace httpcache::lmdb_files
