/* Internal interface between the C core's files. */
#ifndef LM_CORE_H
#define LM_CORE_H

#include <lua.h>
#include <lauxlib.h>

/* Each file adds its functions to the module table at the top of the stack. */
void lm_sqlite_register(lua_State *L);
void lm_hash_register(lua_State *L);
void lm_scan_register(lua_State *L);
void lm_ulid_register(lua_State *L);
void lm_sys_register(lua_State *L);
void lm_pg_register(lua_State *L);
void lm_heartbeat_register(lua_State *L);

/* Fills buf with n bytes from the kernel's CSPRNG; 0 on success. */
int lm_random_bytes(unsigned char *buf, size_t n);

/* The light userdata that stands for SQL NULL inside Lua arrays (core.NULL). */
extern char lm_null_sentinel;
#define LM_IS_NULL(L, i) (lua_islightuserdata((L), (i)) && lua_touserdata((L), (i)) == (void *)&lm_null_sentinel)

#endif
