/* Optional heavy libraries, loaded on first use instead of linked. Not
 * public API.
 *
 * Why: every drst command paid for loading and relocating every library
 * libdrst uses, at each start, even those only one command needs: libcurl's
 * dependency tree (TLS, Kerberos, LDAP, SSH...) and libxgboost with
 * libstdc++, libgomp and libdmlc made `drst --version` take 35 ms; loaded
 * lazily, 21 ms. Only the S3 store uses libcurl and only gbdt training
 * uses libxgboost. */
#ifndef DRST_LAZYLIB_INT_H
#define DRST_LAZYLIB_INT_H

#include <stddef.h>

/* One function to resolve: its symbol name and where its pointer goes
 * (the address of a function-pointer variable). */
typedef struct lazy_sym {
    const char *name;
    void *fnp;
} lazy_sym_t;

/* dlopen(soname) and resolve every symbol. 0 on success; -1 with the
 * reason in why (naming the library and the Debian package `pkg`). Call it
 * under pthread_once: the function pointers are written here and only read
 * afterwards. A library that loads is never unloaded. */
/* The entry for function `fn` of the library's header, to be stored in
 * `ptr`, with a compile-time check that `ptr` has fn's type (sizeof does
 * not evaluate its operand: no reference to fn to link against). For an
 * automatic array's initialiser. */
#define LAZY_SYM(ptr, fn) ((void)sizeof((ptr) = (fn)), (lazy_sym_t){#fn, &(ptr)})

int lazy_load(const char *soname, const char *pkg, const lazy_sym_t *syms, size_t n, char *why,
              size_t whylen);

#endif
