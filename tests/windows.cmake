# SPDX-License-Identifier: MIT
# The Windows build's tests (packaging/windows/build.sh): the CMocka files of the C API that do
# not need what only the host has (fork, signals to stop or kill the server, unix sockets,
# hiredis's own connections, the fixture scripts), cross-compiled and run under Wine
# (CMAKE_CROSSCOMPILING_EMULATOR) against a real redis-server and cluster that the host's fixture
# scripts start, and the LoadLibrary consumer. Label: windows.
find_package(Threads REQUIRED)
_httpcache_static_import(windows::cmocka LIBS cmocka)

# The servers: the Linux fixtures, started and stopped by pid on the host.
function(httpcache_windows_fixture name dir script)
  set(_script "${PROJECT_SOURCE_DIR}/tests/fixtures/${script}")
  add_test(NAME ${name}_start COMMAND "${_script}" start "${dir}" ${ARGN})
  add_test(NAME ${name}_stop COMMAND "${_script}" stop "${dir}")
  set_tests_properties(${name}_start PROPERTIES FIXTURES_SETUP ${name} LABELS windows)
  set_tests_properties(${name}_stop PROPERTIES FIXTURES_CLEANUP ${name} LABELS windows)
endfunction()
set(_redis "${CMAKE_BINARY_DIR}/tests/redis")
set(_cluster "${CMAKE_BINARY_DIR}/tests/cluster")
set(_tls "${CMAKE_BINARY_DIR}/tests/redis-tls")
set(_mtls "${CMAKE_BINARY_DIR}/tests/redis-mtls")
set(_cluster_tls "${CMAKE_BINARY_DIR}/tests/cluster-tls")
httpcache_windows_fixture(redis "${_redis}" redis_server.sh)
httpcache_windows_fixture(cluster "${_cluster}" redis_cluster.sh 0)
httpcache_windows_fixture(redis_tls "${_tls}" redis_server.sh tls)
httpcache_windows_fixture(redis_mtls "${_mtls}" redis_server.sh mtls)
httpcache_windows_fixture(cluster_tls "${_cluster_tls}" redis_cluster.sh 0 tls)

# One Wine server and prefix for the run (packaging/windows/wineserver.sh says why).
set(_wine_env "WINEPREFIX=${CMAKE_BINARY_DIR}/wine;WINEDEBUG=-all;WINEDLLOVERRIDES=mscoree,mshtml=")
add_test(NAME wine_start COMMAND "${PROJECT_SOURCE_DIR}/packaging/windows/wineserver.sh" start)
add_test(NAME wine_stop COMMAND "${PROJECT_SOURCE_DIR}/packaging/windows/wineserver.sh" stop)
set_tests_properties(wine_start PROPERTIES FIXTURES_SETUP wine LABELS windows ENVIRONMENT "${_wine_env}" TIMEOUT 300)
set_tests_properties(wine_stop PROPERTIES FIXTURES_CLEANUP wine LABELS windows ENVIRONMENT "${_wine_env}")

# Wine serializes much of its work in wineserver: generous timeouts.
function(httpcache_windows_test name)
  cmake_parse_arguments(T "" "" "SOURCES;FIXTURES;ENV" ${ARGN})
  add_executable(${name} ${T_SOURCES} "${CMAKE_CURRENT_SOURCE_DIR}/capi/support.c"
                 "${CMAKE_CURRENT_SOURCE_DIR}/capi/support_loop.c")
  target_include_directories(${name} PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/capi")
  target_compile_definitions(${name} PRIVATE "HTTPCACHE_FIXTURE_SCRIPT=\"unused\"")
  target_link_libraries(${name} PRIVATE httpcache::httpcache windows::cmocka Threads::Threads ws2_32)
  target_link_options(${name} PRIVATE -static-libgcc)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS windows TIMEOUT 600 FIXTURES_REQUIRED "wine;${T_FIXTURES}"
    ENVIRONMENT "HTTPCACHE_TEST_REDIS_DIR=${_redis};HTTPCACHE_TEST_CLUSTER_DIR=${_cluster};CMOCKA_MESSAGE_OUTPUT=stdout;${_wine_env};${T_ENV}")
endfunction()

foreach(t errors keys response http ttl wrong_bytes)
  httpcache_windows_test(test_${t} SOURCES capi/test_${t}.c FIXTURES redis)
endforeach()
foreach(t threads async tags stale)
  httpcache_windows_test(test_${t} SOURCES capi/test_${t}.c FIXTURES "redis;cluster")
endforeach()
httpcache_windows_test(test_tls SOURCES capi/test_tls.c FIXTURES "redis_tls;redis_mtls;cluster_tls"
  ENV "HTTPCACHE_TEST_REDIS_TLS_DIR=${_tls};HTTPCACHE_TEST_REDIS_MTLS_DIR=${_mtls};HTTPCACHE_TEST_CLUSTER_TLS_DIR=${_cluster_tls}")
httpcache_windows_test(test_windows SOURCES capi/test_windows.c FIXTURES redis)
target_compile_definitions(test_windows PRIVATE "HTTPCACHE_DLL_PATH=\"$<TARGET_FILE:httpcache>\"")

# Only httpcache_* leaves the DLL, and it needs only Windows' own DLLs and libwinpthread-1.dll.
add_test(NAME windows_exports COMMAND "${PROJECT_SOURCE_DIR}/packaging/windows/check_dll.sh" "$<TARGET_FILE:httpcache>")
set_tests_properties(windows_exports PROPERTIES LABELS windows)
