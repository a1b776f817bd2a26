/*
 * The SQLite driver as Lua sees it: a connection userdata with exec, query, bulk_insert and close.
 *
 * Misuse (a closed handle, a wrong argument type) raises; failures of the database return nil, message, code
 * (the extended result code) and, for exec, the text of the statement that failed.
 * Every prepared statement lives in a to-be-finalized box on the Lua stack, so a Lua error raised in the middle
 * (out of memory while pushing a row) cannot leak it.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "lm_core.h"

#define LM_SQLITE_CONN "luamig.sqlite.conn"
#define LM_SQLITE_STMTBOX "luamig.sqlite.stmtbox"

typedef struct {
  sqlite3 *db;
  double deadline; /* CLOCK_MONOTONIC seconds after which statements are interrupted; 0: none */
} lm_conn;

typedef struct {
  sqlite3_stmt *stmt;
} lm_stmtbox;

static lm_conn *check_open(lua_State *L) {
  lm_conn *c = (lm_conn *)luaL_checkudata(L, 1, LM_SQLITE_CONN);
  if (c->db == NULL) luaL_error(L, "attempt to use a closed database connection");
  return c;
}

static int stmtbox_gc(lua_State *L) {
  lm_stmtbox *b = (lm_stmtbox *)luaL_checkudata(L, 1, LM_SQLITE_STMTBOX);
  if (b->stmt) {
    sqlite3_finalize(b->stmt);
    b->stmt = NULL;
  }
  return 0;
}

static lm_stmtbox *new_stmtbox(lua_State *L) {
  lm_stmtbox *b = (lm_stmtbox *)lua_newuserdatauv(L, sizeof *b, 0);
  b->stmt = NULL;
  luaL_setmetatable(L, LM_SQLITE_STMTBOX);
  return b;
}

static void finalize_box(lm_stmtbox *b) {
  if (b->stmt) {
    sqlite3_finalize(b->stmt);
    b->stmt = NULL;
  }
}

/* Pushes nil, the connection's error message, the extended code; the message is copied before the statement goes. */
static int push_db_error(lua_State *L, sqlite3 *db, int rc, lm_stmtbox *b) {
  const char *msg = sqlite3_errmsg(db);
  int ext = sqlite3_extended_errcode(db);
  lua_pushnil(L);
  lua_pushstring(L, (msg && *msg) ? msg : sqlite3_errstr(rc));
  lua_pushinteger(L, ext ? ext : rc);
  if (b) finalize_box(b);
  return 3;
}

/* Binds the Lua value at index v to parameter i; returns 0, or -1 with a message pushed. */
static int bind_value(lua_State *L, sqlite3_stmt *st, int i, int v, const char *pname) {
  int rc;
  switch (lua_type(L, v)) {
    case LUA_TNIL:
      rc = sqlite3_bind_null(st, i);
      break;
    case LUA_TBOOLEAN:
      rc = sqlite3_bind_int(st, i, lua_toboolean(L, v));
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, v))
        rc = sqlite3_bind_int64(st, i, (sqlite3_int64)lua_tointeger(L, v));
      else
        rc = sqlite3_bind_double(st, i, (double)lua_tonumber(L, v));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, v, &len);
      rc = sqlite3_bind_text64(st, i, s, (sqlite3_uint64)len, SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    }
    case LUA_TLIGHTUSERDATA:
      if (LM_IS_NULL(L, v)) {
        rc = sqlite3_bind_null(st, i);
        break;
      }
      /* fall through */
    default:
      lua_pushfstring(L, "cannot bind a %s to parameter %s", luaL_typename(L, v), pname);
      return -1;
  }
  if (rc != SQLITE_OK) {
    lua_pushfstring(L, "cannot bind parameter %s: %s", pname, sqlite3_errstr(rc));
    return -1;
  }
  return 0;
}

/*
 * Binds the parameters of st from the table at index p: '?' placeholders take the array part in order (continuing
 * from *pos across the statements of one script), ':name' / '@name' / '$name' take string keys.
 * Returns 0, or -1 with a message pushed.
 */
static int bind_params(lua_State *L, sqlite3_stmt *st, int p, lua_Integer *pos) {
  int n = sqlite3_bind_parameter_count(st), i;
  lua_Integer len = (lua_Integer)lua_rawlen(L, p);
  for (i = 1; i <= n; i++) {
    const char *name = sqlite3_bind_parameter_name(st, i);
    char label[32];
    if (name == NULL || name[0] == '?') {
      lua_Integer k = (name && name[1]) ? (lua_Integer)atol(name + 1) : ++*pos;
      if (k > len) {
        lua_pushfstring(L, "statement has more ? placeholders than the %d values given", (int)len);
        return -1;
      }
      lua_rawgeti(L, p, k);
      snprintf(label, sizeof label, "%d", (int)k);
      name = label;
    } else {
      lua_getfield(L, p, name + 1);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushfstring(L, "no value given for parameter %s (use core.NULL for NULL)", name);
        return -1;
      }
    }
    if (bind_value(L, st, i, lua_gettop(L), name) != 0) {
      lua_remove(L, -2);
      return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static void push_column(lua_State *L, sqlite3_stmt *st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, i));
      break;
    case SQLITE_FLOAT:
      lua_pushnumber(L, (lua_Number)sqlite3_column_double(st, i));
      break;
    case SQLITE_TEXT:
      lua_pushlstring(L, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
      break;
    case SQLITE_BLOB: {
      const void *p = sqlite3_column_blob(st, i);
      lua_pushlstring(L, p ? (const char *)p : "", (size_t)sqlite3_column_bytes(st, i));
      break;
    }
    default:
      lua_pushnil(L);
  }
}

/*
 * core.sqlite_open(path [, busy_timeout_ms]) -> connection, or nil, message, code.
 * Foreign keys are on and extended result codes are kept. The connection belongs to the Lua state.
 */
static int lm_sqlite_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer busy = luaL_optinteger(L, 2, 60000);
  lm_conn *c = (lm_conn *)lua_newuserdatauv(L, sizeof *c, 0);
  int rc;
  c->db = NULL;
  c->deadline = 0;
  luaL_setmetatable(L, LM_SQLITE_CONN);
  /* one connection per Lua state and thread: SQLite need not lock it against itself */
  rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, busy < 0 ? 0 : busy > 0x7fffffff ? 0x7fffffff : (int)busy);
    rc = sqlite3_exec(c->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
  }
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    lua_pushinteger(L, c->db ? sqlite3_extended_errcode(c->db) : rc);
    sqlite3_close_v2(c->db);
    c->db = NULL;
    return 3;
  }
  return 1;
}

/*
 * conn:exec(sql [, params]) -> true, changes; or nil, message, code, failing_statement.
 * Runs every statement of sql in order; result rows are discarded.
 */
static int conn_exec(lua_State *L) {
  lm_conn *c = check_open(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  const char *tail = sql, *end = sql + len;
  int has_params = !lua_isnoneornil(L, 3), before, rc;
  lua_Integer pos = 0;
  lm_stmtbox *b;
  if (has_params) luaL_checktype(L, 3, LUA_TTABLE);
  b = new_stmtbox(L);
  before = sqlite3_total_changes(c->db);
  while (tail < end) {
    const char *next = NULL;
    const char *start = tail;
    rc = sqlite3_prepare_v2(c->db, tail, (int)(end - tail), &b->stmt, &next);
    if (rc != SQLITE_OK) {
      push_db_error(L, c->db, rc, b);
      lua_pushlstring(L, start, (size_t)(end - start));
      return 4;
    }
    tail = next;
    if (b->stmt == NULL) continue; /* only white space or a comment */
    if (has_params && bind_params(L, b->stmt, 3, &pos) != 0) {
      lua_pushnil(L);
      lua_insert(L, -2);
      lua_pushinteger(L, SQLITE_RANGE);
      lua_pushlstring(L, start, (size_t)(next - start));
      finalize_box(b);
      return 4;
    }
    while ((rc = sqlite3_step(b->stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
      push_db_error(L, c->db, rc, NULL);
      lua_pushlstring(L, start, (size_t)(next - start));
      finalize_box(b);
      return 4;
    }
    finalize_box(b);
  }
  if (has_params && pos < (lua_Integer)lua_rawlen(L, 3) && pos > 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%d values given but the SQL has %d ? placeholders", (int)lua_rawlen(L, 3), (int)pos);
    lua_pushinteger(L, SQLITE_RANGE);
    lua_pushvalue(L, 2);
    return 4;
  }
  lua_pushboolean(L, 1);
  lua_pushinteger(L, sqlite3_total_changes(c->db) - before);
  return 2;
}

/*
 * conn:query(sql [, params]) -> rows, names; or nil, message, code.
 * rows is an array of tables keyed by column name (NULL columns are absent); names lists the columns in order.
 */
static int conn_query(lua_State *L) {
  lm_conn *c = check_open(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  int has_params = !lua_isnoneornil(L, 3), rc, ncol, i, names, rows;
  lua_Integer pos = 0, nrow = 0;
  const char *next = NULL;
  lm_stmtbox *b;
  if (has_params) luaL_checktype(L, 3, LUA_TTABLE);
  b = new_stmtbox(L);
  rc = sqlite3_prepare_v2(c->db, sql, (int)len, &b->stmt, &next);
  if (rc != SQLITE_OK) return push_db_error(L, c->db, rc, b);
  if (b->stmt == NULL) {
    lua_newtable(L);
    lua_newtable(L);
    return 2;
  }
  if (has_params && bind_params(L, b->stmt, 3, &pos) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushinteger(L, SQLITE_RANGE);
    finalize_box(b);
    return 3;
  }
  ncol = sqlite3_column_count(b->stmt);
  lua_createtable(L, ncol, 0);
  names = lua_gettop(L);
  for (i = 0; i < ncol; i++) {
    lua_pushstring(L, sqlite3_column_name(b->stmt, i));
    lua_rawseti(L, names, i + 1);
  }
  lua_newtable(L);
  rows = lua_gettop(L);
  while ((rc = sqlite3_step(b->stmt)) == SQLITE_ROW) {
    lua_createtable(L, 0, ncol);
    for (i = 0; i < ncol; i++) {
      lua_rawgeti(L, names, i + 1);
      push_column(L, b->stmt, i);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, rows, ++nrow);
  }
  if (rc != SQLITE_DONE) return push_db_error(L, c->db, rc, b);
  finalize_box(b);
  lua_pushvalue(L, names);
  return 2;
}

/*
 * conn:bulk_insert(sql, columns, rows) -> true, count; or nil, message, code, row_number.
 * sql is an INSERT with one ? per entry of columns; each row is a table keyed by column name (absent = NULL).
 * One prepared statement serves every row.
 */
static int conn_bulk_insert(lua_State *L) {
  lm_conn *c = check_open(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  lua_Integer ncols, nrows, r;
  int rc, j, row;
  lm_stmtbox *b;
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  ncols = (lua_Integer)lua_rawlen(L, 3);
  nrows = (lua_Integer)lua_rawlen(L, 4);
  b = new_stmtbox(L);
  rc = sqlite3_prepare_v2(c->db, sql, (int)len, &b->stmt, NULL);
  if (rc != SQLITE_OK) return push_db_error(L, c->db, rc, b);
  if (b->stmt == NULL || sqlite3_bind_parameter_count(b->stmt) != (int)ncols) {
    finalize_box(b);
    return luaL_error(L, "bulk_insert: the statement's placeholders do not match the %d columns", (int)ncols);
  }
  for (r = 1; r <= nrows; r++) {
    if (lua_rawgeti(L, 4, r) != LUA_TTABLE) {
      finalize_box(b);
      return luaL_error(L, "bulk_insert: row %d is a %s, not a table", (int)r, luaL_typename(L, -1));
    }
    row = lua_gettop(L);
    for (j = 1; j <= (int)ncols; j++) {
      lua_rawgeti(L, 3, j);
      lua_pushvalue(L, -1);
      lua_gettable(L, row);
      {
        const char *cname = lua_tostring(L, -2);
        if (bind_value(L, b->stmt, j, lua_gettop(L), cname ? cname : "?") != 0) {
          lua_pushnil(L);
          lua_insert(L, -2);
          lua_pushinteger(L, SQLITE_MISMATCH);
          lua_pushinteger(L, r);
          finalize_box(b);
          return 4;
        }
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    rc = sqlite3_step(b->stmt);
    if (rc != SQLITE_DONE) {
      push_db_error(L, c->db, rc, b);
      lua_pushinteger(L, r);
      return 4;
    }
    sqlite3_reset(b->stmt);
  }
  finalize_box(b);
  lua_pushboolean(L, 1);
  lua_pushinteger(L, nrows);
  return 2;
}

/*
 * conn:backup(path) -> true, or nil, message, code. Copies the main database into a new file at path with the
 * online backup API: one pass under a read lock (the connection's busy timeout applies while taking it), so the
 * copy is a consistent snapshot even while other processes write.
 */
static int backup_failed(lua_State *L, sqlite3 *dest, const char *msg, int rc) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushinteger(L, rc);
  sqlite3_close_v2(dest);
  return 3;
}

static int conn_backup(lua_State *L) {
  lm_conn *c = check_open(L);
  const char *path = luaL_checkstring(L, 2);
  sqlite3 *dest = NULL;
  sqlite3_backup *bk;
  int rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) return backup_failed(L, dest, dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc), rc);
  bk = sqlite3_backup_init(dest, "main", c->db, "main");
  if (bk == NULL) return backup_failed(L, dest, sqlite3_errmsg(dest), sqlite3_extended_errcode(dest));
  do {
    rc = sqlite3_backup_step(bk, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(25);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(bk);
  if (rc != SQLITE_DONE) return backup_failed(L, dest, sqlite3_errstr(rc), rc);
  rc = sqlite3_close(dest);
  if (rc != SQLITE_OK) return backup_failed(L, dest, sqlite3_errstr(rc), rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:in_transaction() -> boolean */
static int conn_in_transaction(lua_State *L) {
  lm_conn *c = check_open(L);
  lua_pushboolean(L, !sqlite3_get_autocommit(c->db));
  return 1;
}

/* conn:close() -> true; idempotent, and the same function serves __gc and __close. */
static double monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* SQLite calls this every few thousand virtual-machine steps: past the deadline it interrupts the statement, which
   then fails with SQLITE_INTERRUPT ("interrupted"). */
static int past_deadline(void *ud) {
  const lm_conn *c = (const lm_conn *)ud;
  return c->deadline > 0 && monotonic() > c->deadline;
}

/* conn:set_deadline(t) -> true: statements still running at core.clock() time t are interrupted; nil clears it */
static int conn_set_deadline(lua_State *L) {
  lm_conn *c = check_open(L);
  if (lua_isnoneornil(L, 2)) {
    c->deadline = 0;
    sqlite3_progress_handler(c->db, 0, NULL, NULL);
  } else {
    c->deadline = luaL_checknumber(L, 2);
    sqlite3_progress_handler(c->db, 4000, past_deadline, c);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int conn_close(lua_State *L) {
  lm_conn *c = (lm_conn *)luaL_checkudata(L, 1, LM_SQLITE_CONN);
  if (c->db) {
    sqlite3_close_v2(c->db);
    c->db = NULL;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int conn_tostring(lua_State *L) {
  lm_conn *c = (lm_conn *)luaL_checkudata(L, 1, LM_SQLITE_CONN);
  if (c->db)
    lua_pushfstring(L, "sqlite connection (%s)", sqlite3_db_filename(c->db, "main"));
  else
    lua_pushliteral(L, "sqlite connection (closed)");
  return 1;
}

static const luaL_Reg conn_methods[] = {
  {"exec", conn_exec},   {"query", conn_query}, {"bulk_insert", conn_bulk_insert}, {"backup", conn_backup},
  {"in_transaction", conn_in_transaction}, {"set_deadline", conn_set_deadline}, {"close", conn_close}, {NULL, NULL}};

static int lm_sqlite_version(lua_State *L) {
  lua_pushstring(L, sqlite3_libversion());
  return 1;
}

void lm_sqlite_register(lua_State *L) {
  if (luaL_newmetatable(L, LM_SQLITE_CONN)) {
    luaL_newlib(L, conn_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, conn_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, conn_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, conn_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LM_SQLITE_STMTBOX)) {
    lua_pushcfunction(L, stmtbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, stmtbox_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, lm_sqlite_open);
  lua_setfield(L, -2, "sqlite_open");
  lua_pushcfunction(L, lm_sqlite_version);
  lua_setfield(L, -2, "sqlite_version");
}
