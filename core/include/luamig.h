/*
 * luamig.h — public C interface of luamig, a schema migration engine driven by Lua 5.4.
 *
 * Every symbol starts with luamig_ or LUAMIG_. Functions return 0 on success.
 */
#ifndef LUAMIG_H
#define LUAMIG_H

#ifdef __cplusplus
extern "C" {
#endif

#include <lua.h>

#define LUAMIG_VERSION "0.1.0"

/*
 * Opens the Lua C module `luamig.core` in a Lua state the host already owns and pushes its table.
 * The table and every handle it creates belong to that Lua state.
 */
int luaopen_luamig_core(lua_State *L);

/*
 * Makes every Lua module of luamig (luamig.cli, luamig.op, ...) loadable by `require` in L from sources compiled
 * into the library, and preloads luamig.core. The host keeps ownership of L. Returns 0.
 */
int luamig_openlibs(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
