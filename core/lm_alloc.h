/* A small-object allocator for Lua states that luamig creates (the executable, luamig_open). */
#ifndef LM_ALLOC_H
#define LM_ALLOC_H

#include <lua.h>

/*
 * Creates a Lua state whose blocks of up to 256 bytes come from per-size free lists carved out of 64 KiB slabs
 * (Lua passes the old size on every call, so blocks need no header); larger blocks go to realloc/free.
 * Returns NULL when out of memory. Close with lm_close_state, which frees the state and every slab.
 * LUAMIG_MALLOC=system in the environment (or building with LUAMIG_SYSTEM_MALLOC, as sanitizer builds do) gives a
 * state that takes every block from malloc instead, so that ASan and valgrind see each one.
 */
lua_State *lm_new_state(void);
void lm_close_state(lua_State *L);

#endif
