/*
 * C tests of luamig.core: the module is opened in a fresh Lua state and exercised the way the Lua layer uses it.
 * Each check prints ok/not ok; the run ends with "N passed, N failed" and writes "passed failed" to argv[1].
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

/* Runs a Lua chunk that returns a boolean (and an optional message); core is in the global `core`. */
static void lua_check(lua_State *L, const char *what, const char *code) {
  int ok;
  if (luaL_dostring(L, code) != LUA_OK) {
    printf("# %s: %s\n", what, lua_tostring(L, -1));
    lua_settop(L, 0);
    check(0, what);
    return;
  }
  ok = lua_toboolean(L, 1);
  if (!ok && lua_gettop(L) >= 2) printf("# %s: %s\n", what, luaL_tolstring(L, 2, NULL));
  lua_settop(L, 0);
  check(ok, what);
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  char dbpath[] = "/tmp/luamig-test-core-XXXXXX";
  int fd = mkstemp(dbpath);
  if (L == NULL || fd < 0) return 2;
  close(fd);
  luaL_openlibs(L);
  luaL_requiref(L, "luamig.core", luaopen_luamig_core, 0);
  lua_setglobal(L, "core");
  lua_pushstring(L, dbpath);
  lua_setglobal(L, "DBPATH");

  lua_check(L, "sha256 of the empty string",
            "return core.sha256('') == 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'");
  lua_check(L, "sha256 of abc",
            "return core.sha256('abc') == 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'");
  lua_check(L, "sha256 of a string with NUL bytes differs from its prefix",
            "return core.sha256('a\\0b') ~= core.sha256('a') and #core.sha256('a\\0b') == 64");
  lua_check(L, "digest is 16 hex characters, the same for the same bytes, and differs on any one changed byte",
            "local s = string.rep('luamig cache bytes ', 500) local d = core.digest(s) "
            "if #d ~= 16 or not d:match('^%x+$') or core.digest(s) ~= d then return false, d end "
            "for i = 1, #s, 37 do local t = s:sub(1, i - 1) .. string.char(s:byte(i) ~ 1) .. s:sub(i + 1) "
            "if core.digest(t) == d then return false, i end end "
            "for n = 0, 17 do if core.digest(s:sub(1, n)) == core.digest(s:sub(1, n + 1)) then return false, n end end "
            "return core.digest('') ~= core.digest('\\0')");
  lua_check(L, "ulid is 26 Crockford characters",
            "local u = core.ulid() return #u == 26 and u:match('^[0-9A-HJKMNP-TV-Z]+$') ~= nil, u");
  lua_check(L, "ulids are strictly increasing within a process",
            "local prev = core.ulid() for i = 1, 2000 do local u = core.ulid() if u <= prev then return false, prev .. ' ' .. u end prev = u end return true");
  lua_check(L, "ulid time part encodes the current time",
            "local u = core.ulid() local alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ' local ms = 0 "
            "for i = 1, 10 do ms = ms * 32 + (alphabet:find(u:sub(i, i), 1, true) - 1) end "
            "return math.abs(ms / 1000 - core.now()) < 5, ms");
  lua_check(L, "random_hex gives 2n hex characters and differs between calls",
            "local a, b = core.random_hex(6), core.random_hex(6) return #a == 12 and a:match('^%x+$') and a ~= b");
  lua_check(L, "sqlite_open creates a database and enables foreign keys",
            "DB = assert(core.sqlite_open(DBPATH, 1000)) local rows = assert(DB:query('PRAGMA foreign_keys')) "
            "return rows[1].foreign_keys == 1");
  lua_check(L, "exec runs several statements and reports changes",
            "local ok, n = DB:exec('CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL); "
            "INSERT INTO t (b) VALUES (\\'x\\'); INSERT INTO t (b) VALUES (\\'y\\')') return ok == true and n == 2, n");
  lua_check(L, "exec binds ? parameters in order and :name parameters by key",
            "assert(DB:exec('INSERT INTO t (a, b) VALUES (?, ?)', { 10, 'ten' })) "
            "assert(DB:exec('INSERT INTO t (a, b) VALUES (:a, :b)', { a = 11, b = 'eleven' })) "
            "local r = assert(DB:query('SELECT b FROM t WHERE a IN (?, ?) ORDER BY a', { 10, 11 })) "
            "return r[1].b == 'ten' and r[2].b == 'eleven'");
  lua_check(L, "query returns typed values and the column names",
            "local rows, names = DB:query('SELECT 1 AS i, 2.5 AS f, \\'s\\' AS s, NULL AS n, x\\'00ff\\' AS bl') "
            "local r = rows[1] return math.type(r.i) == 'integer' and r.f == 2.5 and r.s == 's' and r.n == nil "
            "and r.bl == '\\0\\255' and names[4] == 'n'");
  lua_check(L, "a failing statement returns nil, message, extended code and the statement",
            "local ok, msg, code, stmt = DB:exec('INSERT INTO t (b) VALUES (\\'z\\'); INSERT INTO t (b) VALUES (NULL)') "
            "return ok == nil and msg:find('NOT NULL') and code == 1299 and stmt:find('VALUES %(NULL%)') ~= nil, msg");
  lua_check(L, "a syntax error names the bad token",
            "local ok, msg = DB:exec('CREATE TABLEX nope (a)') return ok == nil and msg:find('TABLEX') ~= nil, msg");
  lua_check(L, "too few values for ? placeholders is an error, not a NULL",
            "local ok, msg = DB:exec('INSERT INTO t (a, b) VALUES (?, ?)', { 20 }) return ok == nil and msg:find('placeholders') ~= nil, msg");
  lua_check(L, "a missing :name value is an error; core.NULL binds NULL",
            "local ok, msg = DB:exec('UPDATE t SET b = :b WHERE a = 10', {}) "
            "local ok2, m2 = DB:exec('INSERT INTO t (a, b) VALUES (?, ?)', { 30, core.NULL }) "
            "return ok == nil and msg:find(':b') and ok2 == nil and m2:find('NOT NULL') ~= nil, tostring(msg) .. tostring(m2)");
  lua_check(L, "ROLLBACK undoes DDL and data; in_transaction follows",
            "assert(DB:exec('BEGIN IMMEDIATE')) local inside = DB:in_transaction() "
            "assert(DB:exec('CREATE TABLE u (x)')) assert(DB:exec('DELETE FROM t')) assert(DB:exec('ROLLBACK')) "
            "local r = assert(DB:query('SELECT count(*) AS n FROM sqlite_master WHERE name = \\'u\\'')) "
            "local c = assert(DB:query('SELECT count(*) AS n FROM t')) "
            "return inside and not DB:in_transaction() and r[1].n == 0 and c[1].n == 5, c[1].n");
  lua_check(L, "bulk_insert inserts every row through one statement, missing keys as NULL",
            "assert(DB:exec('CREATE TABLE big (k INTEGER, v TEXT)')) assert(DB:exec('BEGIN')) local rows = {} "
            "for i = 1, 5000 do rows[i] = { k = i, v = (i % 2 == 0) and ('v' .. i) or nil } end "
            "local ok, n = DB:bulk_insert('INSERT INTO big (k, v) VALUES (?, ?)', { 'k', 'v' }, rows) assert(DB:exec('COMMIT')) "
            "local r = assert(DB:query('SELECT count(*) AS n, count(v) AS nv, sum(k) AS s FROM big')) "
            "return ok and n == 5000 and r[1].n == 5000 and r[1].nv == 2500 and r[1].s == 12502500");
  lua_check(L, "bulk_insert reports the failing row",
            "assert(DB:exec('CREATE TABLE uq (k INTEGER UNIQUE)')) "
            "local ok, msg, code, row = DB:bulk_insert('INSERT INTO uq (k) VALUES (?)', { 'k' }, { {k=1}, {k=2}, {k=1} }) "
            "return ok == nil and row == 3 and msg:find('UNIQUE') ~= nil, msg");
  lua_check(L, "close is idempotent and a closed connection raises on use",
            "assert(DB:close()) assert(DB:close()) local ok, err = pcall(DB.query, DB, 'SELECT 1') "
            "return not ok and tostring(err):find('closed') ~= nil");
  lua_check(L, "a file that is not a database fails with SQLite's message",
            "local f = io.open(DBPATH, 'wb') f:write(string.rep('not a database ', 100)) f:close() "
            "local c, msg = core.sqlite_open(DBPATH, 100) if not c then return msg:find('not a database') ~= nil, msg end "
            "local rows, qmsg = c:query('SELECT * FROM sqlite_master') c:close() "
            "return rows == nil and qmsg:find('not a database') ~= nil, qmsg");
  lua_check(L, "opening a path in a missing directory fails cleanly",
            "local c, msg, code = core.sqlite_open('/nonexistent-dir/x.db', 100) return c == nil and type(msg) == 'string' and code ~= 0");
  lua_check(L, "listdir lists entries and reports a missing directory",
            "local names = assert(core.listdir('/')) local _, err = core.listdir('/nonexistent-dir') "
            "return #names > 0 and err:find('No such file') ~= nil");
  lua_check(L, "localtime converts in a named zone and rejects an unknown one",
            "local t = assert(core.localtime(0, 'UTC')) local o = core.localtime(0, 'Europe/Oslo') "
            "local bad, msg = core.localtime(0, 'Nowhere/Atlantis') "
            "return t.year == 1970 and t.hour == 0 and t.utcoff == 0 and (o == nil or o.utcoff == 3600) and bad == nil and msg:find('Atlantis') ~= nil");
  lua_close(L);
  unlink(dbpath);
  return tap_finish(argc > 1 ? argv[1] : NULL);
}
