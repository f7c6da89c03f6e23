# SPDX-License-Identifier: MIT
# CMake toolchain for the Windows build (x86_64, MinGW-w64 with POSIX threads: std::thread,
# std::mutex and std::condition_variable need them; the -win32 thread model has none).
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=packaging/windows/mingw-w64-x86_64.cmake \
#         -DHTTPCACHE_WINDOWS_DEPS=<prefix of packaging/windows/build-deps.sh>
# Tests run under Wine (CMAKE_CROSSCOMPILING_EMULATOR), so ctest in that tree runs them.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32 ${HTTPCACHE_WINDOWS_DEPS})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
find_program(HTTPCACHE_WINE NAMES wine64 wine PATHS /usr/lib/wine)  # Debian: wine64 has no /usr/bin wrapper
if(HTTPCACHE_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${HTTPCACHE_WINE}")
endif()
