/*
 * The PostgreSQL driver as Lua sees it: a connection userdata over libpq with exec, query, bulk_insert and close.
 *
 * SQL reaching this file uses $1, $2 ... placeholders (the Lua layer numbers ? and :name ones); values travel as
 * text. Misuse raises; failures of the server return nil, message, SQLSTATE (and for exec the statement).
 * Every PGresult lives in a box on the Lua stack whose __gc clears it, so a Lua error cannot leak one.
 */
#include <stdlib.h>
#include <string.h>
#include "lm_pq.h"
#include "lm_core.h"

#define LM_PG_CONN "luamig.pg.conn"
#define LM_PG_RESBOX "luamig.pg.resbox"

/* type OIDs from pg_type.h (stable across server versions) */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701

typedef struct {
  PGconn *conn;
} lm_pgconn;

typedef struct {
  PGresult *res;
} lm_resbox;

static lm_pgconn *check_open(lua_State *L) {
  lm_pgconn *c = (lm_pgconn *)luaL_checkudata(L, 1, LM_PG_CONN);
  if (c->conn == NULL) luaL_error(L, "attempt to use a closed database connection");
  return c;
}

static int resbox_gc(lua_State *L) {
  lm_resbox *b = (lm_resbox *)luaL_checkudata(L, 1, LM_PG_RESBOX);
  if (b->res) {
    PQclear(b->res);
    b->res = NULL;
  }
  return 0;
}

static lm_resbox *new_resbox(lua_State *L) {
  lm_resbox *b = (lm_resbox *)lua_newuserdatauv(L, sizeof *b, 0);
  b->res = NULL;
  luaL_setmetatable(L, LM_PG_RESBOX);
  return b;
}

static void clear_box(lm_resbox *b) {
  if (b->res) {
    PQclear(b->res);
    b->res = NULL;
  }
}

/* Pushes the error message without its trailing newline. */
static void push_message(lua_State *L, const char *msg) {
  size_t n;
  if (msg == NULL || *msg == '\0') msg = "unknown error";
  n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
  lua_pushlstring(L, msg, n);
}

/* Pushes nil, message, SQLSTATE for a failed result (or a connection failure when res is NULL); clears the box. */
static int push_failure(lua_State *L, lm_pgconn *c, lm_resbox *b) {
  const char *state = b->res ? PQresultErrorField(b->res, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = b->res ? PQresultErrorField(b->res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  lua_pushnil(L);
  if (primary)
    push_message(L, primary);
  else
    push_message(L, b->res ? PQresultErrorMessage(b->res) : PQerrorMessage(c->conn));
  lua_pushstring(L, state ? state : "08000");
  clear_box(b);
  return 3;
}

static int ok_status(ExecStatusType s) {
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
}

/*
 * Collects the values of the parameter table at index p (an array, $1 = p[1]) as text. Strings and numbers go
 * as their text, booleans as true/false, nil beyond the count or core.NULL as NULL. Returns the count, or -1 with
 * a message pushed. The converted strings are kept alive on the Lua stack in a table at the top.
 */
static int collect_params(lua_State *L, int p, const char ***out_values) {
  int n, i;
  const char **values;
  if (lua_isnoneornil(L, p)) {
    *out_values = NULL;
    lua_newtable(L);
    return 0;
  }
  luaL_checktype(L, p, LUA_TTABLE);
  n = (int)luaL_checkinteger(L, p + 1);
  values = (const char **)lua_newuserdatauv(L, sizeof(char *) * (size_t)(n > 0 ? n : 1), 1);
  lua_newtable(L); /* anchors the strings */
  for (i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, p, i);
    if (t == LUA_TNIL || LM_IS_NULL(L, -1)) {
      values[i - 1] = NULL;
      lua_pop(L, 1);
      continue;
    }
    if (t == LUA_TBOOLEAN) {
      values[i - 1] = lua_toboolean(L, -1) ? "true" : "false";
      lua_pop(L, 1);
      continue;
    }
    if (t != LUA_TSTRING && t != LUA_TNUMBER) {
      lua_pushfstring(L, "cannot bind a %s to parameter $%d", luaL_typename(L, -1), i);
      return -1;
    }
    values[i - 1] = lua_tostring(L, -1);
    lua_rawseti(L, -2, i);
  }
  lua_setiuservalue(L, -2, 1); /* the strings' table belongs to the values array */
  *out_values = values;
  return n;
}

/* core.pg_connect(conninfo) -> connection, or nil, message. Notices are not printed. */
static void quiet_notices(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int lm_pg_connect(lua_State *L) {
  const char *info = luaL_checkstring(L, 1);
  lm_pgconn *c;
  const char *why = lm_pq_load();
  if (why != NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "PostgreSQL needs libpq (libpq.so.5), which could not be loaded: %s", why);
    return 2;
  }
  c = (lm_pgconn *)lua_newuserdatauv(L, sizeof *c, 0);
  c->conn = NULL;
  luaL_setmetatable(L, LM_PG_CONN);
  c->conn = PQconnectdb(info);
  if (c->conn == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    return 2;
  }
  if (PQstatus(c->conn) != CONNECTION_OK) {
    lua_pushnil(L);
    push_message(L, PQerrorMessage(c->conn));
    PQfinish(c->conn);
    c->conn = NULL;
    return 2;
  }
  PQsetNoticeProcessor(c->conn, quiet_notices, NULL);
  return 1;
}

/* What exec returns for the result in b: true, changes; or nil, message, sqlstate, and the statement at index sql. */
static int exec_result(lua_State *L, lm_pgconn *c, lm_resbox *b, int sql) {
  if (b->res == NULL || !ok_status(PQresultStatus(b->res))) {
    push_failure(L, c, b);
    lua_pushvalue(L, sql);
    return 4;
  }
  {
    const char *tuples = PQcmdTuples(b->res);
    lua_Integer changes = (tuples && *tuples) ? (lua_Integer)atol(tuples) : 0;
    clear_box(b);
    lua_pushboolean(L, 1);
    lua_pushinteger(L, changes);
  }
  return 2;
}

/*
 * conn:exec(sql [, params, nparams]) -> true, changes; or nil, message, sqlstate, sql.
 * Without params the text may hold several statements (simple query protocol); with params it is one statement.
 */
static int pgconn_exec(lua_State *L) {
  lm_pgconn *c = check_open(L);
  const char *sql = luaL_checkstring(L, 2);
  const char **values = NULL;
  int n;
  lm_resbox *b;
  if (!lua_isnoneornil(L, 3)) {
    n = collect_params(L, 3, &values);
    if (n < 0) {
      lua_pushnil(L);
      lua_insert(L, -2);
      lua_pushliteral(L, "22023");
      lua_pushvalue(L, 2);
      return 4;
    }
  } else {
    n = -1;
  }
  b = new_resbox(L);
  b->res = n < 0 ? PQexec(c->conn, sql) : PQexecParams(c->conn, sql, n, NULL, values, NULL, NULL, 0);
  return exec_result(L, c, b, 2);
}

static void push_value(lua_State *L, PGresult *res, int row, int col) {
  const char *v = PQgetvalue(res, row, col);
  switch (PQftype(res, col)) {
    case OID_BOOL:
      lua_pushboolean(L, v[0] == 't');
      break;
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
      lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
      break;
    case OID_FLOAT4:
    case OID_FLOAT8:
      lua_pushnumber(L, (lua_Number)strtod(v, NULL));
      break;
    default:
      lua_pushlstring(L, v, (size_t)PQgetlength(res, row, col));
  }
}

static int query_result(lua_State *L, lm_pgconn *c, lm_resbox *b);

/* conn:query(sql [, params, nparams]) -> rows, names; or nil, message, sqlstate. Rows are keyed by column name. */
static int pgconn_query(lua_State *L) {
  lm_pgconn *c = check_open(L);
  const char *sql = luaL_checkstring(L, 2);
  const char **values = NULL;
  int n = 0;
  lm_resbox *b;
  if (!lua_isnoneornil(L, 3)) {
    n = collect_params(L, 3, &values);
    if (n < 0) {
      lua_pushnil(L);
      lua_insert(L, -2);
      lua_pushliteral(L, "22023");
      return 3;
    }
  }
  b = new_resbox(L);
  b->res = PQexecParams(c->conn, sql, n, NULL, values, NULL, NULL, 0);
  return query_result(L, c, b);
}

/* What query returns for the result in b: rows, names; or nil, message, sqlstate. */
static int query_result(lua_State *L, lm_pgconn *c, lm_resbox *b) {
  int nrows, ncols, r, k, names, rows;
  if (b->res == NULL || !ok_status(PQresultStatus(b->res))) return push_failure(L, c, b);
  nrows = PQntuples(b->res);
  ncols = PQnfields(b->res);
  lua_createtable(L, ncols, 0);
  names = lua_gettop(L);
  for (k = 0; k < ncols; k++) {
    lua_pushstring(L, PQfname(b->res, k));
    lua_rawseti(L, names, k + 1);
  }
  lua_createtable(L, nrows, 0);
  rows = lua_gettop(L);
  for (r = 0; r < nrows; r++) {
    lua_createtable(L, 0, ncols);
    for (k = 0; k < ncols; k++) {
      if (PQgetisnull(b->res, r, k)) continue;
      lua_rawgeti(L, names, k + 1);
      push_value(L, b->res, r, k);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, rows, r + 1);
  }
  clear_box(b);
  lua_pushvalue(L, names);
  return 2;
}

/*
 * conn:bulk_insert(sql, columns, rows) -> true, count; or nil, message, sqlstate, row_number.
 * sql holds $1..$n for the n columns; one prepared statement serves every row: the unnamed one, which the next
 * unnamed statement replaces, so nothing is left on the connection when a row fails or a Lua error is raised.
 */
static int pgconn_bulk_insert(lua_State *L) {
  lm_pgconn *c = check_open(L);
  const char *sql = luaL_checkstring(L, 2);
  lua_Integer ncols, nrows, r;
  int j;
  const char **values;
  lm_resbox *b;
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  ncols = (lua_Integer)lua_rawlen(L, 3);
  nrows = (lua_Integer)lua_rawlen(L, 4);
  values = (const char **)lua_newuserdatauv(L, sizeof(char *) * (size_t)(ncols > 0 ? ncols : 1), 0);
  b = new_resbox(L);
  b->res = PQprepare(c->conn, "", sql, (int)ncols, NULL);
  if (b->res == NULL || !ok_status(PQresultStatus(b->res))) {
    push_failure(L, c, b);
    lua_pushinteger(L, 0);
    return 4;
  }
  clear_box(b);
  for (r = 1; r <= nrows; r++) {
    int row;
    if (lua_rawgeti(L, 4, r) != LUA_TTABLE) return luaL_error(L, "bulk_insert: row %d is not a table", (int)r);
    row = lua_gettop(L);
    for (j = 1; j <= (int)ncols; j++) {
      int t;
      lua_rawgeti(L, 3, j);
      t = lua_gettable(L, row);
      if (t == LUA_TNIL || LM_IS_NULL(L, -1))
        values[j - 1] = NULL;
      else if (t == LUA_TBOOLEAN)
        values[j - 1] = lua_toboolean(L, -1) ? "true" : "false";
      else if (t == LUA_TSTRING || t == LUA_TNUMBER)
        values[j - 1] = lua_tostring(L, -1); /* stays on the stack until the row is sent */
      else
        return luaL_error(L, "bulk_insert: row %d: cannot bind a %s", (int)r, luaL_typename(L, -1));
    }
    b->res = PQexecPrepared(c->conn, "", (int)ncols, values, NULL, NULL, 0);
    if (b->res == NULL || !ok_status(PQresultStatus(b->res))) {
      push_failure(L, c, b);
      lua_pushinteger(L, r);
      return 4;
    }
    clear_box(b);
    lua_settop(L, row - 1);
  }
  lua_pushboolean(L, 1);
  lua_pushinteger(L, nrows);
  return 2;
}

/*
 * Without waiting: conn:send(sql [, params, nparams]) -> true, or nil, message (the statement is sent; a
 * caller that waits elsewhere, as a fleet's scheduler does, then polls busy() and collects the outcome with
 * exec_result(sql) or query_result()). conn:socket() -> the file descriptor to wait on for reading.
 * conn:busy() -> whether the result is still to come (input read first; a broken connection is not busy: its
 * failure is the result).
 */
static int pgconn_send(lua_State *L) {
  lm_pgconn *c = check_open(L);
  const char *sql = luaL_checkstring(L, 2);
  const char **values = NULL;
  int n = -1, sent;
  if (!lua_isnoneornil(L, 3)) {
    n = collect_params(L, 3, &values);
    if (n < 0) {
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
  }
  sent = n < 0 ? PQsendQuery(c->conn, sql) : PQsendQueryParams(c->conn, sql, n, NULL, values, NULL, NULL, 0);
  if (!sent) {
    lua_pushnil(L);
    push_message(L, PQerrorMessage(c->conn));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int pgconn_socket(lua_State *L) {
  lm_pgconn *c = check_open(L);
  lua_pushinteger(L, PQsocket(c->conn));
  return 1;
}

static int pgconn_busy(lua_State *L) {
  lm_pgconn *c = check_open(L);
  lua_pushboolean(L, PQconsumeInput(c->conn) && PQisBusy(c->conn));
  return 1;
}

/* The results of what send() sent, as PQexec keeps them: the first failure, else the last result. */
static void take_results(lm_pgconn *c, lm_resbox *b) {
  PGresult *r;
  while ((r = PQgetResult(c->conn)) != NULL) {
    if (b->res != NULL && !ok_status(PQresultStatus(b->res))) {
      PQclear(r);
      continue;
    }
    clear_box(b);
    b->res = r;
  }
}

static int pgconn_exec_result(lua_State *L) {
  lm_pgconn *c = check_open(L);
  lm_resbox *b;
  luaL_checkstring(L, 2);
  b = new_resbox(L);
  take_results(c, b);
  return exec_result(L, c, b, 2);
}

static int pgconn_query_result(lua_State *L) {
  lm_pgconn *c = check_open(L);
  lm_resbox *b = new_resbox(L);
  take_results(c, b);
  return query_result(L, c, b);
}

/* conn:backend_pid() -> the server process id libpq was told at login (a pooler's own, behind one) */
static int pgconn_backend_pid(lua_State *L) {
  lm_pgconn *c = check_open(L);
  lua_pushinteger(L, PQbackendPID(c->conn));
  return 1;
}

/* conn:broken() -> whether the connection to the server is lost */
static int pgconn_broken(lua_State *L) {
  lm_pgconn *c = check_open(L);
  lua_pushboolean(L, PQstatus(c->conn) == CONNECTION_BAD);
  return 1;
}

/* conn:in_transaction() -> boolean */
static int pgconn_in_transaction(lua_State *L) {
  lm_pgconn *c = check_open(L);
  PGTransactionStatusType s = PQtransactionStatus(c->conn);
  lua_pushboolean(L, s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE);
  return 1;
}

/* conn:close() -> true; idempotent, and the same function serves __gc and __close. */
static int pgconn_close(lua_State *L) {
  lm_pgconn *c = (lm_pgconn *)luaL_checkudata(L, 1, LM_PG_CONN);
  if (c->conn) {
    PQfinish(c->conn);
    c->conn = NULL;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg pgconn_methods[] = {
  {"exec", pgconn_exec}, {"query", pgconn_query}, {"bulk_insert", pgconn_bulk_insert},
  {"in_transaction", pgconn_in_transaction}, {"close", pgconn_close}, {"send", pgconn_send},
  {"socket", pgconn_socket}, {"busy", pgconn_busy}, {"exec_result", pgconn_exec_result},
  {"query_result", pgconn_query_result}, {"backend_pid", pgconn_backend_pid}, {"broken", pgconn_broken},
  {NULL, NULL}};

void lm_pg_register(lua_State *L) {
  if (luaL_newmetatable(L, LM_PG_CONN)) {
    luaL_newlib(L, pgconn_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, pgconn_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, pgconn_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LM_PG_RESBOX)) {
    lua_pushcfunction(L, resbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, lm_pg_connect);
  lua_setfield(L, -2, "pg_connect");
  lm_heartbeat_register(L);
}
