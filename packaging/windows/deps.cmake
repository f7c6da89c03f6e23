# SPDX-License-Identifier: MIT
# The dependencies of the Windows build, as the targets the Linux build gets from pkg-config and
# find_package: static libraries that packaging/windows/build-deps.sh compiled with MinGW-w64
# from Debian's source packages into HTTPCACHE_WINDOWS_DEPS (hiredis's reply reader, LMDB, ICU
# with the time-zone data only, OpenSSL), and fmt header-only. All of them are linked into
# httpcache.dll, which then needs only Windows' own DLLs.
set(HTTPCACHE_WINDOWS_DEPS "" CACHE PATH "Prefix of packaging/windows/build-deps.sh")
if(NOT EXISTS "${HTTPCACHE_WINDOWS_DEPS}/lib/libhiredis.a")
  message(FATAL_ERROR "HTTPCACHE_WINDOWS_DEPS='${HTTPCACHE_WINDOWS_DEPS}' holds no build of packaging/windows/build-deps.sh")
endif()
set(_deps "${HTTPCACHE_WINDOWS_DEPS}")

function(_httpcache_static_import name)
  cmake_parse_arguments(D "" "" "LIBS;DEFINES;SYSTEM" ${ARGN})
  add_library(${name} INTERFACE IMPORTED GLOBAL)
  set(_files)
  foreach(lib IN LISTS D_LIBS)
    list(APPEND _files "${_deps}/lib/lib${lib}.a")
  endforeach()
  set_target_properties(${name} PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_deps}/include"
    INTERFACE_COMPILE_DEFINITIONS "${D_DEFINES}"
    INTERFACE_LINK_LIBRARIES "${_files};${D_SYSTEM}")
endfunction()

_httpcache_static_import(PkgConfig::HIREDIS LIBS hiredis)
_httpcache_static_import(PkgConfig::LMDB LIBS lmdb SYSTEM advapi32)
_httpcache_static_import(fmt::fmt DEFINES FMT_HEADER_ONLY)
# Static ICU: its headers must not declare the functions dllimport.
_httpcache_static_import(ICU::i18n LIBS icui18n DEFINES U_STATIC_IMPLEMENTATION)
_httpcache_static_import(ICU::uc LIBS icuuc icudata DEFINES U_STATIC_IMPLEMENTATION SYSTEM advapi32)
_httpcache_static_import(OpenSSL::Crypto LIBS crypto SYSTEM ws2_32 crypt32 bcrypt advapi32 user32)
_httpcache_static_import(OpenSSL::SSL LIBS ssl crypto SYSTEM ws2_32 crypt32 bcrypt advapi32 user32)
