/*
 * For tests only: the allocator luamig_open gives each new Lua state (NULL, NULL restores realloc/free). Not part of
 * luamig.h; tests/c/test_api_alloc.c fails the Nth allocation with it.
 */
#ifndef LM_API_TEST_H
#define LM_API_TEST_H
#include <lua.h>

void lm_api_set_alloc(lua_Alloc f, void *ud);

#endif
