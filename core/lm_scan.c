/*
 * core.scan_revision(src) -> a table of the revision fields a migration file declares as literals, or nil.
 *
 * Reading the revision graph needs each file's revision, down_revision, branch_labels, depends_on and transactional,
 * not its code. This walks the text once, skipping comments and strings the way Lua's lexer does, and looks at
 * every identifier that is one of those names and is followed by "=" (not "=="): the value must be a literal
 * (nil, true, false, a quoted string without escapes, or a brace list of such strings), and each name may be assigned
 * at most once. Anything else returns nil and the caller compiles and runs the file instead. The first line's
 * "--- message" comes back as message.
 */
#include <string.h>
#include <lauxlib.h>
#include "lm_core.h"

static const char *const NAMES[] = {"revision", "down_revision", "branch_labels", "depends_on", "transactional"};
static const size_t NAME_LEN[] = {8, 13, 13, 10, 13};
#define NNAMES 5

/* Character classes: 1 identifier characters, 2 what can start a comment, string or long bracket. */
static const unsigned char cls[256] = {
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
  ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
  ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
  ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
  ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
  ['8'] = 1, ['9'] = 1, ['_'] = 1, ['-'] = 2, ['"'] = 2, ['\''] = 2, ['['] = 2,
};

static int is_ident(int c) {
  return cls[c & 255] == 1;
}

static size_t skip_space(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
  return i;
}

/* A long bracket [[ ... ]] / [==[ ... ]==] at s[i] == '['; returns the index after it, or 0 if s[i] opens none. */
static size_t long_bracket(const char *s, size_t i, size_t n) {
  size_t level = 0, j = i + 1;
  while (j < n && s[j] == '=') {
    level++;
    j++;
  }
  if (j >= n || s[j] != '[') return 0;
  for (j = j + 1; j < n; j++) {
    if (s[j] == ']') {
      size_t k = j + 1, l = 0;
      while (k < n && s[k] == '=' && l < level) {
        k++;
        l++;
      }
      if (l == level && k < n && s[k] == ']') return k + 1;
    }
  }
  return n;
}

/* A quoted string at s[i]; returns the index after it (escapes skipped). */
static size_t quoted(const char *s, size_t i, size_t n) {
  char q = s[i];
  size_t j;
  for (j = i + 1; j < n; j++) {
    if (s[j] == '\\') {
      j++;
      continue;
    }
    if (s[j] == q || s[j] == '\n') return j + 1;
  }
  return n;
}

/* Pushes the plain string literal at s[i] (no escapes, one line); returns the index after it, or 0. */
static size_t push_plain_string(lua_State *L, const char *s, size_t i, size_t n) {
  char q = s[i];
  size_t j;
  if (q != '"' && q != '\'') return 0;
  for (j = i + 1; j < n; j++) {
    if (s[j] == q) {
      lua_pushlstring(L, s + i + 1, j - i - 1);
      return j + 1;
    }
    if (s[j] == '\\' || s[j] == '\n') return 0;
  }
  return 0;
}

static int word_at(const char *s, size_t i, size_t n, const char *w) {
  size_t len = strlen(w);
  return i + len <= n && memcmp(s + i, w, len) == 0 && (i + len == n || !is_ident((unsigned char)s[i + len]));
}

/* Pushes the literal value at s[i] (nothing for nil, *is_nil set); returns the index after it, or 0 when it is
   not a literal. */
static size_t push_literal(lua_State *L, const char *s, size_t i, size_t n, int *is_nil) {
  size_t j;
  *is_nil = 0;
  if (word_at(s, i, n, "nil")) {
    *is_nil = 1;
    return i + 3;
  }
  if (word_at(s, i, n, "true")) {
    lua_pushboolean(L, 1);
    return i + 4;
  }
  if (word_at(s, i, n, "false")) {
    lua_pushboolean(L, 0);
    return i + 5;
  }
  if (s[i] == '"' || s[i] == '\'') return push_plain_string(L, s, i, n);
  if (s[i] == '{') {
    lua_Integer k = 0;
    lua_newtable(L);
    j = skip_space(s, i + 1, n);
    while (j < n && s[j] != '}') {
      size_t e = push_plain_string(L, s, j, n);
      if (e == 0) {
        lua_pop(L, 1);
        return 0;
      }
      lua_rawseti(L, -2, ++k);
      j = skip_space(s, e, n);
      if (j < n && (s[j] == ',' || s[j] == ';')) j = skip_space(s, j + 1, n);
    }
    if (j >= n) {
      lua_pop(L, 1);
      return 0;
    }
    return j + 1;
  }
  return 0;
}

static int scan_revision(lua_State *L) {
  size_t n, i = 0, start, end;
  const char *s = luaL_checklstring(L, 1, &n);
  int seen[NNAMES] = {0, 0, 0, 0, 0};
  lua_createtable(L, 0, 6);
  /* "--- message" on the first line */
  start = end = 0;
  if (n >= 3 && s[0] == '-' && s[1] == '-' && s[2] == '-') {
    start = 3;
    while (start < n && (s[start] == ' ' || s[start] == '\t')) start++;
    end = start;
    while (end < n && s[end] != '\n' && s[end] != '\r') end++;
  }
  lua_pushlstring(L, s + start, end - start);
  lua_setfield(L, -2, "message");
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    if (cls[c] == 0) {
      i++;
      continue;
    }
    if (c == '-' && i + 1 < n && s[i + 1] == '-') {
      /* a comment: long, or to the end of the line */
      if (i + 2 < n && s[i + 2] == '[') {
        size_t e = long_bracket(s, i + 2, n);
        if (e) {
          i = e;
          continue;
        }
      }
      while (i < n && s[i] != '\n') i++;
      continue;
    }
    if (c == '"' || c == '\'') {
      i = quoted(s, i, n);
      continue;
    }
    if (c == '[') {
      size_t e = long_bracket(s, i, n);
      i = e ? e : i + 1;
      continue;
    }
    if (cls[c] == 1) {
      size_t j = i + 1, k;
      int which = -1;
      while (j < n && cls[(unsigned char)s[j]] == 1) j++;
      /* only identifiers of a name's length and first letter are compared */
      if (j - i >= 8 && j - i <= 13 && (c == 'r' || c == 'd' || c == 'b' || c == 't')) {
        for (k = 0; k < NNAMES; k++) {
          if (j - i == NAME_LEN[k] && memcmp(s + i, NAMES[k], NAME_LEN[k]) == 0) which = (int)k;
        }
      }
      if (which >= 0 && !(i > 0 && s[i - 1] == ':')) {
        size_t e = skip_space(s, j, n);
        if (e < n && s[e] == '=' && !(e + 1 < n && s[e + 1] == '=')) {
          size_t v = skip_space(s, e + 1, n), after;
          int is_nil;
          if (seen[which]) return 0; /* assigned twice: run the file */
          seen[which] = 1;
          after = push_literal(L, s, v, n, &is_nil);
          if (after == 0) return 0; /* not a literal */
          if (!is_nil) lua_setfield(L, -2, NAMES[which]);
          i = after;
          continue;
        }
      }
      i = j;
      continue;
    }
    i++;
  }
  if (!seen[0]) return 0;
  return 1;
}

void lm_scan_register(lua_State *L) {
  lua_pushcfunction(L, scan_revision);
  lua_setfield(L, -2, "scan_revision");
}
