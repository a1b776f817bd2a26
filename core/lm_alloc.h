/* A small-object allocator for the Lua state of the luamig executable (libluamig's luamig_open uses Lua's own). */
#ifndef LM_ALLOC_H
#define LM_ALLOC_H

#include <lua.h>

/*
 * Creates a Lua state whose blocks of up to 256 bytes come from per-size free lists carved out of 64 KiB slabs
 * (Lua passes the old size on every call, so blocks need no header); larger blocks go to realloc/free.
 * Returns NULL when out of memory. Close with lm_close_state, which frees the state and every slab.
 * ASan (poisoning) and valgrind (mempool client requests) check its blocks as they check malloc's. LUAMIG_MALLOC=system
 * in the environment gives a state that takes every block from malloc instead (what scripts/bench compares it with).
 */
lua_State *lm_new_state(void);
void lm_close_state(lua_State *L);

#endif
