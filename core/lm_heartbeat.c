/*
 * A lease's heartbeat: one statement (the lease's renewal) run every interval on a connection of its own, in a
 * thread of its own, so that a migration statement running for minutes on the migrating connection cannot starve
 * it. The statement must change one row while the lease is held; when it changes none the lease is lost and the
 * heartbeat stops beating. Lua sees a userdata with status() and stop(); __gc stops it too.
 *
 * The thread owns its PGconn and the copies of the statement and its values; the Lua side touches only the state
 * under the mutex. stop() wakes the thread, joins it and frees everything.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lm_pq.h"
#include "lm_core.h"

#define LM_HEARTBEAT "luamig.pg.heartbeat"

enum { HB_OK, HB_LOST, HB_ERROR };

typedef struct {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int running; /* the thread was started and not joined */
  int stopping;
  int state; /* HB_* */
  long beats;
  char message[256];
  PGconn *conn;
  char *sql;
  int nparams;
  char **values;
  long interval_ms;
} lm_heartbeat;

static void set_message(lm_heartbeat *h, const char *m) {
  size_t n;
  if (m == NULL) m = "unknown error";
  strncpy(h->message, m, sizeof h->message - 1);
  h->message[sizeof h->message - 1] = '\0';
  n = strlen(h->message);
  while (n > 0 && (h->message[n - 1] == '\n' || h->message[n - 1] == ' ')) h->message[--n] = '\0';
}

static void *beat(void *arg) {
  lm_heartbeat *h = (lm_heartbeat *)arg;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    struct timespec until;
    PGresult *res;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += h->interval_ms / 1000;
    until.tv_nsec += (h->interval_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!h->stopping && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&h->cv, &h->mu, &until);
    if (h->stopping) break;
    pthread_mutex_unlock(&h->mu);
    res = PQexecParams(h->conn, h->sql, h->nparams, NULL, (const char *const *)h->values, NULL, NULL, 0);
    pthread_mutex_lock(&h->mu);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
      /* a renewal that failed may succeed next time; the lease itself says whether it is still held */
      h->state = HB_ERROR;
      set_message(h, res ? PQresultErrorMessage(res) : PQerrorMessage(h->conn));
    } else if (atol(PQcmdTuples(res)) == 0) {
      h->state = HB_LOST;
      set_message(h, "the lease was not ours any more when it was renewed");
    } else {
      h->state = HB_OK;
      h->beats++;
    }
    if (res) PQclear(res);
    if (h->state == HB_LOST) break;
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static void free_parts(lm_heartbeat *h) {
  int i;
  if (h->conn) PQfinish(h->conn);
  h->conn = NULL;
  free(h->sql);
  h->sql = NULL;
  if (h->values) {
    for (i = 0; i < h->nparams; i++) free(h->values[i]);
    free(h->values);
  }
  h->values = NULL;
}

static int hb_stop(lua_State *L) {
  lm_heartbeat *h = (lm_heartbeat *)luaL_checkudata(L, 1, LM_HEARTBEAT);
  if (h->running) {
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->running = 0;
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
  }
  free_parts(h);
  return 0;
}

/* hb:status() -> "ok" | "lost" | "error", message or nil, number of renewals made */
static int hb_status(lua_State *L) {
  lm_heartbeat *h = (lm_heartbeat *)luaL_checkudata(L, 1, LM_HEARTBEAT);
  static const char *const names[] = {"ok", "lost", "error"};
  int state;
  long beats;
  char msg[sizeof h->message];
  if (!h->running) {
    lua_pushliteral(L, "stopped");
    lua_pushnil(L);
    lua_pushinteger(L, 0);
    return 3;
  }
  pthread_mutex_lock(&h->mu);
  state = h->state;
  beats = h->beats;
  memcpy(msg, h->message, sizeof msg);
  pthread_mutex_unlock(&h->mu);
  lua_pushstring(L, names[state]);
  if (state == HB_OK)
    lua_pushnil(L);
  else
    lua_pushstring(L, msg);
  lua_pushinteger(L, (lua_Integer)beats);
  return 3;
}

static char *copy(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = (char *)malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/*
 * core.pg_heartbeat(conninfo, sql, params, interval_seconds) -> heartbeat, or nil, message. params: an array of
 * strings ($1..$n). The connection is made here, so that a failure to connect is this call's.
 */
static int lm_pg_heartbeat(lua_State *L) {
  const char *info = luaL_checkstring(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  lua_Number interval;
  lm_heartbeat *h;
  int i, n;
  const char *why;
  luaL_checktype(L, 3, LUA_TTABLE);
  interval = luaL_checknumber(L, 4);
  if (interval < 0.001) interval = 0.001;
  why = lm_pq_load();
  if (why != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  n = (int)lua_rawlen(L, 3);
  h = (lm_heartbeat *)lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, LM_HEARTBEAT);
  h->interval_ms = (long)(interval * 1000);
  h->sql = copy(sql);
  h->values = (char **)calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
  if (h->sql == NULL || h->values == NULL) return luaL_error(L, "out of memory");
  h->nparams = n;
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    h->values[i] = copy(luaL_checkstring(L, -1));
    lua_pop(L, 1);
    if (h->values[i] == NULL) return luaL_error(L, "out of memory");
  }
  h->conn = PQconnectdb(info);
  if (h->conn == NULL || PQstatus(h->conn) != CONNECTION_OK) {
    lua_pushnil(L);
    lua_pushstring(L, h->conn ? PQerrorMessage(h->conn) : "out of memory");
    free_parts(h);
    return 2;
  }
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  if (pthread_create(&h->thread, NULL, beat, h) != 0) {
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free_parts(h);
    lua_pushnil(L);
    lua_pushliteral(L, "cannot start the heartbeat thread");
    return 2;
  }
  h->running = 1;
  return 1;
}

static const luaL_Reg hb_methods[] = {{"status", hb_status}, {"stop", hb_stop}, {NULL, NULL}};

void lm_heartbeat_register(lua_State *L) {
  if (luaL_newmetatable(L, LM_HEARTBEAT)) {
    luaL_newlib(L, hb_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, hb_stop);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, lm_pg_heartbeat);
  lua_setfield(L, -2, "pg_heartbeat");
}
