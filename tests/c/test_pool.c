/*
 * The executable's pool allocator (core/lm_alloc.c): a Lua state on it runs a workload that makes and frees many
 * objects of every size class and closes cleanly; under ASan (scripts/test --sanitize) a child process that reads a
 * freed block, or past the size a block was resized to, is stopped by ASan, which shows that the pool's blocks are
 * poisoned as malloc's are; under valgrind (run with --error-exitcode) memcheck reports those reads in a child, which
 * shows that the pool's client requests make its blocks malloc-like to valgrind.
 *   test_pool COUNTFILE
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "lm_alloc.h"
#if defined(LUAMIG_VALGRIND)
#include <valgrind/valgrind.h>
#define LM_CHECKED 1
#elif defined(__SANITIZE_ADDRESS__)
#define LM_CHECKED 1
#endif

#include "tap.h"

static const char WORKLOAD[] =
  "local keep = {}\n"
  "for round = 1, 20 do\n"
  "  local t = {}\n"
  "  for i = 1, 2000 do t[i] = { i, string.rep('x', i % 300), function() return i end } end\n"
  "  keep[round % 3] = t\n"
  "  collectgarbage()\n"
  "end\n"
  "local n = 0\n"
  "for _, t in pairs(keep) do n = n + #t end\n"
  "return n\n";

#if defined(LM_CHECKED)
/* stopped(fn) -> whether a child running fn was stopped (ASan reports the access and exits non-zero) */
static int stopped(void (*fn)(lua_Alloc, void *)) {
  lua_State *L = lm_new_state();
  void *ud = NULL;
  lua_Alloc f = lua_getallocf(L, &ud);
  pid_t pid;
  int status = 0;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    /* the report goes to the child's stderr: keep the test's output readable */
    if (freopen("/dev/null", "w", stderr) == NULL) _exit(3);
    fn(f, ud);
    _exit(0);
  }
  waitpid(pid, &status, 0);
  lm_close_state(L);
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static volatile char sink;

static void read_freed(lua_Alloc f, void *ud) {
  char *p = (char *)f(ud, NULL, LUA_TTABLE, 40);
  memset(p, 1, 40);
  f(ud, p, 40, 0);
  sink = p[3];
}

static void read_past_shrink(lua_Alloc f, void *ud) {
  char *p = (char *)f(ud, NULL, LUA_TSTRING, 30);
  memset(p, 1, 30);
  p = (char *)f(ud, p, 30, 20); /* the same 32-byte block, 20 bytes of it live */
  sink = p[25];
}

static void read_live(lua_Alloc f, void *ud) {
  char *p = (char *)f(ud, NULL, LUA_TSTRING, 20);
  memset(p, 1, 20);
  p = (char *)f(ud, p, 20, 30);
  memset(p + 20, 2, 10);
  sink = p[29];
  f(ud, p, 30, 0);
}
#endif

int main(int argc, char **argv) {
  lua_State *L = lm_new_state();
  check(L != NULL, "lm_new_state makes a state on the pool");
  luaL_openlibs(L);
  if (luaL_dostring(L, WORKLOAD) != LUA_OK) printf("# %s\n", lua_tostring(L, -1));
  check(lua_tointeger(L, -1) == 6000, "a workload of every size class runs on the pool, collected as it goes");
  lm_close_state(L);
#if defined(LM_CHECKED)
#if defined(__SANITIZE_ADDRESS__)
  {
    const char *who = "ASan";
#else
  if (RUNNING_ON_VALGRIND) {
    const char *who = "valgrind";
#endif
    char what[120];
    snprintf(what, sizeof what, "%s stops a read of a freed pool block", who);
    check(stopped(read_freed), what);
    snprintf(what, sizeof what, "%s stops a read past the size a pool block was shrunk to", who);
    check(stopped(read_past_shrink), what);
    snprintf(what, sizeof what, "%s lets a block grown within its class be used to its new size", who);
    check(!stopped(read_live), what);
  }
#endif
  return tap_finish(argc > 1 ? argv[1] : NULL);
}
