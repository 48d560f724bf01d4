/* dlopen/dlsym for the optional libraries (see lazylib_int.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "common/lazylib_int.h"

int lazy_load(const char *soname, const char *pkg, const lazy_sym_t *syms, size_t n, char *why,
              size_t whylen)
{
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(why, whylen, "cannot load %s (Debian package %s): %s", soname, pkg,
                 e ? e : "unknown error");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(lib, syms[i].name);
        if (!p) {
            snprintf(why, whylen, "%s has no %s (Debian package %s too old?)", soname, syms[i].name,
                     pkg);
            return -1; /* kept loaded: a partial table is never used */
        }
        /* POSIX: the object pointer dlsym returns converts to the function
         * pointer; memcpy says so without a cast ISO C lacks. */
        memcpy(syms[i].fnp, &p, sizeof(p));
    }
    return 0;
}
