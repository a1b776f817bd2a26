/* A package searcher over the sources compiled into the binary, and luamig_openlibs for C hosts. */
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "lm_embed.h"
#include "luamig.h"

static int cmp_module(const void *key, const void *elem) {
  return strcmp((const char *)key, ((const lm_embedded_module *)elem)->module);
}

static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const lm_embedded_module *m = (const lm_embedded_module *)bsearch(
      name, lm_embedded_modules, (size_t)lm_embedded_count, sizeof lm_embedded_modules[0], cmp_module);
  char chunkname[256];
  if (m == NULL) {
    lua_pushfstring(L, "no embedded module '%s'", name);
    return 1;
  }
  snprintf(chunkname, sizeof chunkname, "@%s", m->path);
  /* precompiled at build time (scripts/embed-lua.cmake); a binary chunk carries its own chunk name */
  if (luaL_loadbufferx(L, m->source, m->length, chunkname, "bt") != LUA_OK)
    return luaL_error(L, "error loading embedded module '%s':\n\t%s", name, lua_tostring(L, -1));
  lua_pushstring(L, m->path);
  return 2;
}

int lm_embed_install(lua_State *L) {
  lua_Integer n, i;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  n = (lua_Integer)lua_rawlen(L, -1);
  for (i = n; i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
  return 0;
}

int luamig_openlibs(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_luamig_core);
  lua_setfield(L, -2, "luamig.core");
  lua_pop(L, 1);
  return lm_embed_install(L);
}
