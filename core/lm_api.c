/*
 * The C API of luamig.h: each handle owns a Lua state running luamig's Lua API (require("luamig")), with lpeg and
 * the embedded lua/ sources. Errors never escape as longjmps: every call into Lua is protected, and what failed is
 * kept in the handle for luamig_errmsg.
 */
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "luamig.h"

int luaopen_lpeg(lua_State *L);

struct luamig {
  lua_State *L;
  int ref;       /* the Lua handle (LUA_NOREF when open failed) */
  int code;      /* the last result code */
  char *errmsg;  /* the last failure's message, malloc'd */
  char *current; /* the last luamig_current result, malloc'd */
};

static const char *const NOT_AN_ERROR = "not an error";
static const char *const OUT_OF_MEMORY = "out of memory";

static char *copy_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = (char *)malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static int fail(luamig *m, int code, const char *msg) {
  free(m->errmsg);
  m->errmsg = copy_string(msg ? msg : "unknown error");
  m->code = (m->errmsg == NULL) ? LUAMIG_NOMEM : code;
  return m->code;
}

static int succeed(luamig *m) {
  free(m->errmsg);
  m->errmsg = NULL;
  m->code = LUAMIG_OK;
  return LUAMIG_OK;
}

/* Runs in the protected call of luamig_open: the options table is at index 1. */
static int open_in_lua(lua_State *L) {
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lpeg);
  lua_setfield(L, -2, "lpeg");
  lua_pop(L, 1);
  luamig_openlibs(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamig");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "open");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 2);
  return 2;
}

static void set_string(lua_State *L, const char *key, const char *value) {
  if (value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
  }
}

luamig *luamig_open(const luamig_options *opts) {
  luamig *m = (luamig *)calloc(1, sizeof *m);
  lua_State *L;
  if (m == NULL) return NULL;
  m->ref = LUA_NOREF;
  L = m->L = luaL_newstate();
  if (L == NULL) {
    fail(m, LUAMIG_NOMEM, OUT_OF_MEMORY);
    return m;
  }
  lua_pushcfunction(L, open_in_lua);
  lua_createtable(L, 0, 5);
  if (opts) {
    set_string(L, "config", opts->config);
    set_string(L, "url", opts->url);
    set_string(L, "script_location", opts->script_location);
    set_string(L, "version_table", opts->version_table);
    if (opts->lock_timeout > 0) {
      lua_pushnumber(L, (lua_Number)opts->lock_timeout);
      lua_setfield(L, -2, "lock_timeout");
    }
  }
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    fail(m, LUAMIG_ERROR, lua_tostring(L, -1));
    lua_settop(L, 0);
    return m;
  }
  if (lua_isnil(L, -2)) {
    fail(m, LUAMIG_ERROR, lua_tostring(L, -1));
    lua_settop(L, 0);
    return m;
  }
  lua_pop(L, 1);
  m->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  succeed(m);
  return m;
}

/* Calls handle:method(arg) protected; leaves its two results on the stack. Returns a result code. */
static int call_method(luamig *m, const char *method, const char *arg) {
  lua_State *L;
  if (m == NULL) return LUAMIG_MISUSE;
  if (m->L == NULL || m->ref == LUA_NOREF) return fail(m, LUAMIG_MISUSE, "this luamig handle did not open");
  L = m->L;
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_getfield(L, -1, method);
  lua_insert(L, -2);
  if (arg)
    lua_pushstring(L, arg);
  else
    lua_pushnil(L);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
    int code = fail(m, LUAMIG_ERROR, lua_tostring(L, -1));
    lua_settop(L, 0);
    return code;
  }
  if (lua_isnil(L, -2)) {
    int code = fail(m, LUAMIG_ERROR, lua_tostring(L, -1));
    lua_settop(L, 0);
    return code;
  }
  return succeed(m);
}

int luamig_upgrade(luamig *m, const char *target) {
  int rc = call_method(m, "upgrade", target ? target : "head");
  if (m && m->L) lua_settop(m->L, 0);
  return rc;
}

int luamig_downgrade(luamig *m, const char *target) {
  int rc;
  if (m && target == NULL) return fail(m, LUAMIG_MISUSE, "luamig_downgrade needs a target (\"-1\", \"base\", a revision)");
  rc = call_method(m, "downgrade", target);
  if (m && m->L) lua_settop(m->L, 0);
  return rc;
}

const char *luamig_current(luamig *m) {
  lua_State *L;
  luaL_Buffer b;
  lua_Integer i, n;
  int list;
  if (call_method(m, "current", NULL) != LUAMIG_OK) return NULL;
  L = m->L;
  lua_pop(L, 1); /* the list of revisions is on top now */
  list = lua_gettop(L);
  n = (lua_Integer)lua_rawlen(L, list);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, ',');
    lua_rawgeti(L, list, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  free(m->current);
  m->current = copy_string(lua_tostring(L, -1));
  lua_settop(L, 0);
  if (m->current == NULL) {
    fail(m, LUAMIG_NOMEM, OUT_OF_MEMORY);
    return NULL;
  }
  return m->current;
}

int luamig_errcode(luamig *m) {
  return m ? m->code : LUAMIG_NOMEM;
}

const char *luamig_errmsg(luamig *m) {
  if (m == NULL) return OUT_OF_MEMORY;
  if (m->code == LUAMIG_OK) return NOT_AN_ERROR;
  return m->errmsg ? m->errmsg : OUT_OF_MEMORY;
}

void luamig_close(luamig *m) {
  if (m == NULL) return;
  if (m->L) {
    if (m->ref != LUA_NOREF) {
      lua_rawgeti(m->L, LUA_REGISTRYINDEX, m->ref);
      lua_getfield(m->L, -1, "close");
      lua_insert(m->L, -2);
      lua_pcall(m->L, 1, 0, 0);
    }
    lua_close(m->L);
  }
  free(m->errmsg);
  free(m->current);
  free(m);
}
