/*
 * luamig.core when memory runs out, as Lua's own ltests.c checks its library: a workload over the core's functions
 * (SQLite open, exec, query, bulk_insert, backup and close; the migration-file loader and scanner; SHA-256; the
 * file-system and clock helpers) runs in a fresh Lua state whose allocator fails the Nth allocation and every one
 * after it, for every N up to what the whole workload needs. Each run must end in a Lua error or in success (never
 * a crash or an abort), and lua_close must free everything: under scripts/test --sanitize, ASan reports any use of
 * freed memory and LeakSanitizer any leak (SQLite handles, statements, file descriptors boxed in userdata).
 *   test_core_alloc COUNTFILE VERSIONS_DIR [STEP]   (STEP > 1 tries every STEPth N, for quick runs by hand)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "luamig.h"
#include "tap.h"

static long allocations; /* growing allocations since the workload started */
static long fail_from;   /* 0: never fail */
static int counting;     /* count only while the workload runs */

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  /* for a new block (ptr NULL) osize is the kind of object, not a size */
  if (counting && (ptr == NULL || nsize > osize)) {
    allocations++;
    if (fail_from > 0 && allocations >= fail_from) return NULL;
  }
  return realloc(ptr, nsize);
}

/* The workload: what the Lua layer asks of the core during a run. It raises on any unexpected result. */
static const char WORKLOAD[] =
  "local core, dir, db_path, versions = ...\n"
  "assert(#core.sha256(string.rep('x', 1000)) == 64)\n"
  "local names = assert(core.listdir(versions, true))\n"
  "for _, n in ipairs(names) do\n"
  "  if n:match('%.lua$') then\n"
  "    local p = versions .. '/' .. n\n"
  "    local src = assert(core.read_source(p))\n"
  "    core.scan_revision(src)\n"
  "    local chunk = assert(core.load_migration(p, '@' .. n, setmetatable({}, { __index = _G })))\n"
  "    assert(type(chunk) == 'function')\n"
  "  end\n"
  "end\n"
  "assert(core.filetype(dir) == 'directory')\n"
  "assert(core.localtime(0, 'UTC'))\n"
  "local c <close> = assert(core.sqlite_open(db_path, 100))\n"
  "assert(c:exec('CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)'))\n"
  "assert(c:exec('BEGIN IMMEDIATE'))\n"
  "local rows = {}\n"
  "for i = 1, 50 do rows[i] = { k = i, v = 'value ' .. i } end\n"
  "assert(c:bulk_insert('INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)', { 'k', 'v' }, rows))\n"
  "assert(c:exec('UPDATE t SET v = :v WHERE k = :k', { k = 3, v = 'three' }))\n"
  "assert(c:exec('COMMIT'))\n"
  "local got = assert(c:query('SELECT k, v FROM t WHERE k < ? ORDER BY k', { 10 }))\n"
  "assert(#got == 9 and got[3].v == 'three')\n"
  "local ok, msg = c:exec('INSERT INTO t (k, v) VALUES (1, NULL)')\n"
  "assert(ok == nil and type(msg) == 'string')\n"
  "assert(c:backup(dir .. '/copy.db'))\n"
  "return true\n";

/* One run with the allocator failing from n on: 0 done, 1 a Lua error (memory), -1 a wrong outcome */
static int attempt(long n, const char *dir, const char *db_path, const char *versions, int *mem_errors) {
  lua_State *L;
  int status, out;
  counting = 0;
  L = lua_newstate(failing_alloc, NULL);
  if (L == NULL) return -1;
  luaL_openlibs(L);
  luaL_requiref(L, "luamig.core", luaopen_luamig_core, 0);
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, WORKLOAD, sizeof WORKLOAD - 1, "=workload") != LUA_OK) {
    lua_close(L);
    return -1;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "luamig.core");
  lua_remove(L, -2);
  lua_pushstring(L, dir);
  lua_pushstring(L, db_path);
  lua_pushstring(L, versions);
  allocations = 0;
  fail_from = n;
  counting = 1;
  status = lua_pcall(L, 4, 1, 0);
  counting = 0;
  if (status == LUA_OK) {
    out = lua_toboolean(L, -1) ? 0 : -1;
  } else if (status == LUA_ERRMEM || status == LUA_ERRRUN || status == LUA_ERRERR) {
    /* out of memory shows as LUA_ERRMEM, or as a raised error whose message a failed allocation made */
    out = 1;
    if (status == LUA_ERRMEM) (*mem_errors)++;
  } else {
    out = -1;
  }
  if (out == -1) printf("# failing from allocation %ld: status %d, %s\n", n, status, lua_tostring(L, -1));
  lua_close(L);
  fail_from = 0;
  return out;
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/luamig-core-alloc.XXXXXX"; /* a mkdtemp template: it replaces the Xs */
  char db_path[4096], cmd[4200];
  long total, n, step = 1, done = 0, errors = 0, wrong = 0;
  int mem_errors = 0, r;
  if (argc < 3) {
    fprintf(stderr, "usage: test_core_alloc COUNTFILE VERSIONS_DIR [STEP]\n");
    return 2;
  }
  if (argc > 3) step = atol(argv[3]) > 0 ? atol(argv[3]) : 1;
  if (mkdtemp(dir) == NULL) return 2;
  snprintf(db_path, sizeof db_path, "%s/app.db", dir);

  /* how many allocations the whole workload makes when none fails */
  r = attempt(0, dir, db_path, argv[2], &mem_errors);
  total = allocations;
  {
    char what[160];
    snprintf(what, sizeof what, "the workload succeeds with every allocation granted (%ld allocations)", total);
    check(r == 0 && total > 100, what);
  }
  for (n = 1; n <= total + 1; n += step) {
    r = attempt(n, dir, db_path, argv[2], &mem_errors);
    if (r == 0) done++;
    else if (r == 1) errors++;
    else wrong++;
  }
  printf("# %ld runs: %ld raised (%d LUA_ERRMEM), %ld done, %ld wrong\n", done + errors + wrong, errors, mem_errors,
    done, wrong);
  check(wrong == 0, "every failing allocation ends in a Lua error or in success, never a crash");
  check(mem_errors > 0, "running out of memory raises LUA_ERRMEM");
  check(done >= 1, "with the allocation past the last one failing, the workload succeeds");

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return tap_finish(argv[1]);
}
