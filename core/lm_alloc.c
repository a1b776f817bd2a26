/*
 * The allocator behind lm_new_state. Lua allocates and frees many small objects (strings, tables, closures) and
 * always tells the allocator the size of the block it frees or resizes, so size classes of 16 bytes with a free list
 * each serve them with a pointer push or pop. Memory freed to a class stays with it until the state is closed.
 */
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "lm_alloc.h"

/*
 * Memory checkers see every block of the pool as they would a malloc'd one. Under ASan (scripts/test --sanitize)
 * a slab is poisoned when it is carved, a block unpoisoned for exactly the size Lua asked for and poisoned again
 * when freed: reading a freed block, or past the end of a live one, is reported. Under valgrind the pool is a
 * memcheck mempool (client requests, which cost a few instructions when valgrind is not there): each block is a
 * chunk of it, undefined when given out and inaccessible once freed. A freed block keeps the free list's link in
 * its first bytes; the checkers are told before that link is read.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define LM_POISON(a, n) ASAN_POISON_MEMORY_REGION((a), (n))
#define LM_UNPOISON(a, n) ASAN_UNPOISON_MEMORY_REGION((a), (n))
#else
#define LM_POISON(a, n) ((void)(a), (void)(n))
#define LM_UNPOISON(a, n) ((void)(a), (void)(n))
#endif
#if defined(LUAMIG_VALGRIND)
#include <valgrind/memcheck.h>
/* (each request costs a few instructions even without valgrind: they are made only when running under it) */
#define LM_VG(p, request) \
  do { \
    if ((p)->under_valgrind) request; \
  } while (0)
#define LM_UNDER_VALGRIND() RUNNING_ON_VALGRIND
#else
#define LM_VG(p, request) ((void)(p))
#define LM_UNDER_VALGRIND() 0
#define VALGRIND_CREATE_MEMPOOL(pool, rz, zeroed) ((void)0)
#define VALGRIND_DESTROY_MEMPOOL(pool) ((void)0)
#define VALGRIND_MEMPOOL_ALLOC(pool, a, n) ((void)0)
#define VALGRIND_MEMPOOL_FREE(pool, a) ((void)0)
#define VALGRIND_MEMPOOL_CHANGE(pool, a, b, n) ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(a, n) ((void)0)
#define VALGRIND_MAKE_MEM_DEFINED(a, n) ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(a, n) ((void)0)
#endif

#define LM_GRAIN 16
#define LM_SMALL_MAX 256
#define LM_CLASSES (LM_SMALL_MAX / LM_GRAIN)
#define LM_SLAB_SIZE (64 * 1024)

typedef struct lm_free {
  struct lm_free *next;
} lm_free;

typedef struct lm_slab {
  struct lm_slab *next;
} lm_slab;

typedef struct {
  lm_free *free[LM_CLASSES];
  lm_slab *slabs;
  char *cursor; /* the unused tail of the newest slab */
  char *limit;
  int under_valgrind;
} lm_pool;

static size_t class_of(size_t n) {
  return (n + LM_GRAIN - 1) / LM_GRAIN - 1;
}

/* pool_get(p, n): a block for n bytes (1 to LM_SMALL_MAX), or NULL */
static void *pool_get(lm_pool *p, size_t n) {
  size_t c = class_of(n);
  size_t size = (c + 1) * LM_GRAIN;
  lm_free *f = p->free[c];
  if (f) {
    LM_UNPOISON(f, sizeof *f);
    LM_VG(p, VALGRIND_MAKE_MEM_DEFINED(f, sizeof *f));
    p->free[c] = f->next;
  } else {
    if ((size_t)(p->limit - p->cursor) < size) {
      /* the slab header is padded to the grain so blocks stay 16-byte aligned */
      lm_slab *s = (lm_slab *)malloc(LM_SLAB_SIZE);
      if (s == NULL) return NULL;
      s->next = p->slabs;
      p->slabs = s;
      p->cursor = (char *)s + LM_GRAIN;
      p->limit = (char *)s + LM_SLAB_SIZE;
      LM_POISON(p->cursor, (size_t)(p->limit - p->cursor));
      LM_VG(p, VALGRIND_MAKE_MEM_NOACCESS(p->cursor, (size_t)(p->limit - p->cursor)));
    }
    f = (lm_free *)p->cursor;
    p->cursor += size;
  }
  LM_UNPOISON(f, n);
  LM_VG(p, VALGRIND_MEMPOOL_ALLOC(p, f, n));
  return f;
}

static void pool_put(lm_pool *p, void *ptr, size_t n) {
  lm_free *f = (lm_free *)ptr;
  size_t c = class_of(n);
  /* the link goes into the block (a block is at least 16 bytes, whatever size Lua asked for); then the whole block
     is off limits, link included */
  LM_VG(p, VALGRIND_MEMPOOL_FREE(p, f));
  LM_VG(p, VALGRIND_MAKE_MEM_UNDEFINED(f, sizeof *f));
  LM_UNPOISON(f, sizeof *f);
  f->next = p->free[c];
  p->free[c] = f;
  LM_POISON(f, (c + 1) * LM_GRAIN);
  LM_VG(p, VALGRIND_MAKE_MEM_NOACCESS(f, (c + 1) * LM_GRAIN));
}

static void *lm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lm_pool *p = (lm_pool *)ud;
  int small_old = ptr != NULL && osize <= LM_SMALL_MAX;
  void *np;
  if (nsize == 0) {
    if (ptr == NULL) return NULL;
    if (small_old)
      pool_put(p, ptr, osize);
    else
      free(ptr);
    return NULL;
  }
  if (ptr == NULL) {
    /* osize is then a type tag, not a size */
    return nsize <= LM_SMALL_MAX ? pool_get(p, nsize) : malloc(nsize);
  }
  if (small_old) {
    if (nsize <= LM_SMALL_MAX && class_of(nsize) == class_of(osize)) {
      /* the same block: what lies past the new size is off limits again (or now within it) */
      LM_POISON(ptr, (class_of(osize) + 1) * LM_GRAIN);
      LM_UNPOISON(ptr, nsize);
      LM_VG(p, VALGRIND_MEMPOOL_CHANGE(p, ptr, ptr, nsize));
      if (nsize > osize)
        LM_VG(p, VALGRIND_MAKE_MEM_UNDEFINED((char *)ptr + osize, nsize - osize));
      else
        LM_VG(p, VALGRIND_MAKE_MEM_NOACCESS((char *)ptr + nsize, osize - nsize));
      return ptr;
    }
    np = nsize <= LM_SMALL_MAX ? pool_get(p, nsize) : malloc(nsize);
    if (np == NULL) return NULL;
    memcpy(np, ptr, osize < nsize ? osize : nsize);
    pool_put(p, ptr, osize);
    return np;
  }
  if (nsize <= LM_SMALL_MAX) {
    np = pool_get(p, nsize);
    if (np == NULL) return NULL;
    memcpy(np, ptr, nsize);
    free(ptr);
    return np;
  }
  return realloc(ptr, nsize);
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  lua_writestringerror("luamig: unprotected error in Lua: %s\n", msg ? msg : "(error object is not a string)");
  return 0;
}

lua_State *lm_new_state(void) {
  lm_pool *p;
  lua_State *L;
  const char *choice = getenv("LUAMIG_MALLOC");
  if (choice != NULL && strcmp(choice, "system") == 0) {
    /* every block from malloc (what scripts/bench compares the pool with) */
    L = luaL_newstate();
    if (L != NULL) lua_setwarnf(L, NULL, NULL);
    return L;
  }
  p = (lm_pool *)calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->under_valgrind = LM_UNDER_VALGRIND() != 0;
  LM_VG(p, VALGRIND_CREATE_MEMPOOL(p, 0, 0));
  L = lua_newstate(lm_alloc, p);
  if (L == NULL) {
    free(p);
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, NULL, NULL);
  return L;
}

void lm_close_state(lua_State *L) {
  void *ud = NULL;
  lm_pool *p;
  lm_slab *s;
  if (L == NULL) return;
  if (lua_getallocf(L, &ud) != lm_alloc) {
    lua_close(L);
    return;
  }
  lua_close(L);
  p = (lm_pool *)ud;
  LM_VG(p, VALGRIND_DESTROY_MEMPOOL(p));
  s = p->slabs;
  while (s) {
    lm_slab *next = s->next;
    free(s);
    s = next;
  }
  free(p);
}
