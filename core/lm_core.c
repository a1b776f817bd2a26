/* luamig.core: the module table Lua sees, assembled from each concern's file. */
#include "lm_core.h"
#include "luamig.h"

#ifndef LUAMIG_VERSION_STRING
#define LUAMIG_VERSION_STRING LUAMIG_VERSION
#endif

char lm_null_sentinel;

int luaopen_luamig_core(lua_State *L) {
  lua_newtable(L);
  lm_sqlite_register(L);
  lm_hash_register(L);
  lm_scan_register(L);
  lm_ulid_register(L);
  lm_sys_register(L);
  lm_pg_register(L);
  lua_pushlightuserdata(L, &lm_null_sentinel);
  lua_setfield(L, -2, "NULL");
  lua_pushliteral(L, LUAMIG_VERSION_STRING);
  lua_setfield(L, -2, "version");
  return 1;
}
