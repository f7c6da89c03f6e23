/* SPDX-License-Identifier: MIT
 * Loads the installed library by its SONAME, as a program that ships no header would. */
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
  void *lib = dlopen("libhttpcache.so.1", RTLD_NOW | RTLD_LOCAL);
  const char *(*version)(void);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  *(void **)&version = dlsym(lib, "httpcache_version_string");
  if (!version) return 2;
  printf("dlopen by SONAME ok: %s\n", version());
  dlclose(lib);
  return 0;
}
