/*
 * One libFuzzer harness for each parser (built by scripts/fuzz as fuzz_NAME with -DLM_FUZZ_NAME="NAME"): a Lua state
 * with luamig's modules, and tests/fuzz/targets.lua's function NAME called on each input. Bad input must come back
 * as a value (nil, message); a Lua error escaping the target is a bug, reported with its traceback and then abort(),
 * which libFuzzer records as a crash. C faults in the core are caught by ASan/UBSan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "luamig.h"

int luaopen_lpeg(lua_State *L);

#ifndef LM_FUZZ_NAME
#error "build with -DLM_FUZZ_NAME=\"name\""
#endif
#ifndef LM_FUZZ_TARGETS
#error "build with -DLM_FUZZ_TARGETS=\"/path/to/targets.lua\""
#endif

static lua_State *state; /* kept for the whole run (reachable, so the leak checker does not count it) */

/* Lua's memory, capped: an input that makes a target allocate without end gets a memory error (which the target
   reports as bad input) instead of exhausting the fuzzer. */
#define LM_FUZZ_MEMORY (512u << 20)
static size_t used;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t old = ptr ? osize : 0;
  void *np;
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    used -= old;
    return NULL;
  }
  if (nsize > old && used + (nsize - old) > LM_FUZZ_MEMORY) return NULL;
  np = realloc(ptr, nsize);
  if (np != NULL) used = used - old + nsize;
  return np;
}

/* Lua line coverage for libFuzzer: a line hook bumps a counter per (function, line), in the section libFuzzer reads
   as extra coverage, so that mutations that reach new lines of the Lua parsers are kept. The same hook spends an
   instruction budget: an input that runs longer raises "instruction budget spent" (inside a migration's own code
   the target reports that as bad input; anywhere else it is a parser too slow for its input, and a finding). */
#define LM_FUZZ_COUNTERS 65536
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_lines[LM_FUZZ_COUNTERS];
#define LM_FUZZ_TICK 10000
#define LM_FUZZ_BUDGET 2000 /* ticks: 20 million VM instructions per input */
static int ticks;

static void hook(lua_State *L, lua_Debug *ar) {
  if (ar->event == LUA_HOOKCOUNT) {
    if (++ticks > LM_FUZZ_BUDGET) luaL_error(L, "instruction budget spent");
    return;
  }
  if (lua_getinfo(L, "S", ar)) {
    uintptr_t h = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline * 2654435761u;
    lua_lines[(h >> 4) % LM_FUZZ_COUNTERS]++;
  }
}

static int traceback(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  lua_State *L = lua_newstate(capped_alloc, NULL);
  (void)argc;
  (void)argv;
  if (L == NULL) abort();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lpeg);
  lua_setfield(L, -2, "lpeg");
  lua_pop(L, 1);
  luamig_openlibs(L);
  lua_pushcfunction(L, traceback);
  if (luaL_loadfile(L, LM_FUZZ_TARGETS) != LUA_OK || lua_pcall(L, 0, 1, -2) != LUA_OK) {
    fprintf(stderr, "fuzz: cannot load %s: %s\n", LM_FUZZ_TARGETS, lua_tostring(L, -1));
    abort();
  }
  lua_getfield(L, -1, LM_FUZZ_NAME);
  if (!lua_isfunction(L, -1)) {
    fprintf(stderr, "fuzz: %s defines no target %s\n", LM_FUZZ_TARGETS, LM_FUZZ_NAME);
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "luamig.fuzz.target");
  lua_settop(L, 0);
  state = L;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = state;
  ticks = 0;
  lua_sethook(L, hook, LUA_MASKLINE | LUA_MASKCOUNT, LM_FUZZ_TICK);
  lua_pushcfunction(L, traceback);
  lua_getfield(L, LUA_REGISTRYINDEX, "luamig.fuzz.target");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    fprintf(stderr, "fuzz %s: an error escaped the target: %s\n", LM_FUZZ_NAME, lua_tostring(L, -1));
    abort();
  }
  lua_sethook(L, NULL, 0, 0);
  lua_settop(L, 0);
  /* free what the input made, so that the input ends with as many frees as allocations and libFuzzer's leak check
     (run after any input that allocates more than it frees) has nothing to scan for */
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
