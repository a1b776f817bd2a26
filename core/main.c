/*
 * The luamig executable: a Lua state with lpeg and luamig.core preloaded and the embedded lua/ sources searchable,
 * running luamig.cli.main(args) inside lua_pcall. As in lua.c, main only maps the outcome to an exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <sqlite3.h>
#include "luamig.h"
#include "lm_alloc.h"

int luaopen_lpeg(lua_State *L);

/* Message handler: an unexpected error (a bug, not bad input) carries a traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i;
  luaL_checkversion(L);
  /* A run keeps every loaded migration alive and each GC cycle marks all of them again; per-step garbage is small.
     A long pause (a cycle when the heap reaches 10x what the last one kept) trades memory for far fewer such
     cycles: on scripts/bench/graph it halves the time of `upgrade head --sql` over 10,000 migrations. */
  lua_gc(L, LUA_GCINC, 1000, 200, 0);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lpeg);
  lua_setfield(L, -2, "lpeg");
  lua_pop(L, 1);
  luamig_openlibs(L);

  lua_pushcfunction(L, msghandler);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamig.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_remove(L, -2);
  lua_createtable(L, argc, 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  if (lua_pcall(L, 1, 1, -3) != LUA_OK) {
    fprintf(stderr, "luamig: internal error: %s\n", lua_tostring(L, -1));
    lua_pushinteger(L, 1);
    return 1;
  }
  lua_pushinteger(L, lua_isinteger(L, -1) ? lua_tointeger(L, -1) : (lua_toboolean(L, -1) ? 0 : 1));
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L;
  int status, code;
  /* This process runs one thread and keeps no count of SQLite's memory: no mutex and no bookkeeping around each of
     SQLite's allocations (before sqlite3_initialize, which the first connection calls). A C host linking libluamig
     keeps its own settings. */
  sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  L = lm_new_state();
  if (L == NULL) {
    fprintf(stderr, "luamig: cannot create a Lua state: out of memory\n");
    return 1;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "luamig: %s\n", msg ? msg : "(error without a message)");
    code = 1;
  } else {
    code = (int)lua_tointeger(L, -1);
  }
  fflush(stdout);
  lm_close_state(L);
  return code;
}
