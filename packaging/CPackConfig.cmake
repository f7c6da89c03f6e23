# SPDX-License-Identifier: MIT
# Debian packages, one per component:
#   libhttpcache<SOVERSION>  the shared library (runtime)
#   libhttpcache-dev         header, .so link, pkg-config and CMake files (development)
#   python3-httpcache        the Python package (python), when the extension is built
# Runtime dependencies on Debian's libraries are computed by dpkg-shlibdeps.
set(CPACK_PACKAGE_NAME "httpcache")
set(CPACK_PACKAGE_VENDOR "httpcache developers")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "httpcache developers <dev@httpcache.invalid>")
set(CPACK_GENERATOR "DEB")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION "libs")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")

set(CPACK_COMPONENTS_ALL runtime development)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "libhttpcache${HTTPCACHE_SOVERSION}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION "libs")
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME "libhttpcache-dev")
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS "libhttpcache${HTTPCACHE_SOVERSION} (= ${PROJECT_VERSION})")
if(TARGET httpcache_python AND NOT SKBUILD)
  list(APPEND CPACK_COMPONENTS_ALL python)
  set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME "python3-httpcache")
  set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION "python")
  set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS "libhttpcache${HTTPCACHE_SOVERSION} (= ${PROJECT_VERSION}), python3 (>= 3.11)")
  # The extension links libhttpcache.so.1, which is in this build, not yet in any installed package.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${PROJECT_BINARY_DIR}/capi")
endif()
include(CPack)
