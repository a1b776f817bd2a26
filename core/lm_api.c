/*
 * The C API of luamig.h: each handle owns a Lua state running luamig's Lua API (require("luamig")), with lpeg and
 * the embedded lua/ sources. Errors never escape as longjmps: everything that can allocate in the Lua state (building
 * the options table, looking up a method, joining luamig_current's list) runs inside lua_pcall, as lua.c's pmain
 * does, so running out of memory anywhere returns LUAMIG_NOMEM; what failed is kept in the handle for luamig_errmsg.
 */
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "luamig.h"
#include "lm_api_test.h"

int luaopen_lpeg(lua_State *L);

struct luamig {
  lua_State *L;
  int ref;       /* 1 when the Lua handle is in the registry, LUA_NOREF when open failed */
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

/* where the Lua handle lives in the registry (one per state) */
#define HANDLE_KEY "luamig.api.handle"

static lua_Alloc test_alloc;
static void *test_alloc_ud;

void lm_api_set_alloc(lua_Alloc f, void *ud) {
  test_alloc = f;
  test_alloc_ud = ud;
}

/* lauxlib's allocator and panic handler, as luaL_newstate sets them */
static void *plain_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

static int panic(lua_State *L) {
  (void)L;
  return 0; /* unreachable: nothing runs outside lua_pcall */
}

static void set_string(lua_State *L, const char *key, const char *value) {
  if (value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
  }
}

/* Runs in the protected call of luamig_open: the options are the light userdata at index 1. */
static int open_in_lua(lua_State *L) {
  const luamig_options *opts = (const luamig_options *)lua_touserdata(L, 1);
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
  lua_call(L, 1, 2);
  if (!lua_isnil(L, -2)) {
    lua_pushvalue(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, HANDLE_KEY);
  }
  return 2;
}

/* The message of a failed protected call: its error value when that is a string */
static int fail_pcall(luamig *m, int status) {
  lua_State *L = m->L;
  int code = status == LUA_ERRMEM ? LUAMIG_NOMEM : LUAMIG_ERROR;
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  fail(m, code, status == LUA_ERRMEM ? OUT_OF_MEMORY : msg);
  lua_settop(L, 0);
  return m->code;
}

luamig *luamig_open(const luamig_options *opts) {
  luamig *m = (luamig *)calloc(1, sizeof *m);
  lua_State *L;
  int status;
  if (m == NULL) return NULL;
  m->ref = LUA_NOREF;
  L = m->L = test_alloc ? lua_newstate(test_alloc, test_alloc_ud) : lua_newstate(plain_alloc, NULL);
  if (L == NULL) {
    fail(m, LUAMIG_NOMEM, OUT_OF_MEMORY);
    return m;
  }
  lua_atpanic(L, panic);
  lua_pushcfunction(L, open_in_lua);
  lua_pushlightuserdata(L, (void *)opts);
  status = lua_pcall(L, 1, 2, 0);
  if (status != LUA_OK) {
    fail_pcall(m, status);
    return m;
  }
  if (lua_isnil(L, -2)) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    fail(m, LUAMIG_ERROR, msg);
    lua_settop(L, 0);
    return m;
  }
  m->ref = 1; /* the handle was anchored in the registry inside the protected call */
  lua_settop(L, 0);
  succeed(m);
  return m;
}

struct method_call {
  const char *method;
  const char *arg;
  int join; /* join the list result with commas (luamig_current) */
};

/* Runs protected: handle:method(arg), leaving its two results; the first joined into one string when asked. */
static int method_in_lua(lua_State *L) {
  const struct method_call *c = (const struct method_call *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, HANDLE_KEY);
  lua_getfield(L, -1, c->method);
  lua_insert(L, -2);
  if (c->arg)
    lua_pushstring(L, c->arg);
  else
    lua_pushnil(L);
  lua_call(L, 2, 2);
  if (c->join && lua_istable(L, 1)) {
    luaL_Buffer b;
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, 1);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      if (i > 1) luaL_addchar(&b, ',');
      lua_rawgeti(L, 1, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_replace(L, 1);
  }
  return 2;
}

/* Calls handle:method(arg) protected; leaves its two results on the stack. Returns a result code. */
static int call_method(luamig *m, const char *method, const char *arg, int join) {
  lua_State *L;
  struct method_call c;
  int status;
  if (m == NULL) return LUAMIG_MISUSE;
  if (m->L == NULL || m->ref == LUA_NOREF) return fail(m, LUAMIG_MISUSE, "this luamig handle did not open");
  L = m->L;
  c.method = method;
  c.arg = arg;
  c.join = join;
  lua_settop(L, 0);
  lua_pushcfunction(L, method_in_lua);
  lua_pushlightuserdata(L, &c);
  status = lua_pcall(L, 1, 2, 0);
  if (status != LUA_OK) return fail_pcall(m, status);
  if (lua_isnil(L, -2)) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int code = fail(m, LUAMIG_ERROR, msg);
    lua_settop(L, 0);
    return code;
  }
  return succeed(m);
}

int luamig_upgrade(luamig *m, const char *target) {
  int rc = call_method(m, "upgrade", target ? target : "head", 0);
  if (m && m->L) lua_settop(m->L, 0);
  return rc;
}

int luamig_downgrade(luamig *m, const char *target) {
  int rc;
  if (m && target == NULL) return fail(m, LUAMIG_MISUSE, "luamig_downgrade needs a target (\"-1\", \"base\", a revision)");
  rc = call_method(m, "downgrade", target, 0);
  if (m && m->L) lua_settop(m->L, 0);
  return rc;
}

const char *luamig_current(luamig *m) {
  lua_State *L;
  if (call_method(m, "current", NULL, 1) != LUAMIG_OK) return NULL;
  L = m->L;
  free(m->current);
  m->current = lua_type(L, 1) == LUA_TSTRING ? copy_string(lua_tostring(L, 1)) : NULL;
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
    if (m->ref != LUA_NOREF) call_method(m, "close", NULL, 0);
    lua_close(m->L);
  }
  free(m->errmsg);
  free(m->current);
  free(m);
}
