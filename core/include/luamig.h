/*
 * luamig.h — public C interface of luamig, a schema migration engine driven by Lua 5.4.
 *
 * Every symbol starts with luamig_ or LUAMIG_. Functions return 0 on success.
 */
#ifndef LUAMIG_H
#define LUAMIG_H

#ifdef __cplusplus
extern "C" {
#endif

#include <lua.h>

#define LUAMIG_VERSION "0.1.0"

/*
 * The migration API for C hosts, after sqlite3.h: an opaque handle, integer result codes, and who owns what stated
 * per function. Each handle runs its own Lua state: handles are independent and may be used from different threads,
 * one thread at a time per handle. Many processes or threads may upgrade one database at once; each migration is
 * applied exactly once (the migration lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).
 */
typedef struct luamig luamig;

/* Result codes. */
#define LUAMIG_OK 0     /* done */
#define LUAMIG_ERROR 1  /* failed: bad input, a failed migration, the lock not obtained in time; see luamig_errmsg */
#define LUAMIG_NOMEM 2  /* out of memory */
#define LUAMIG_MISUSE 3 /* a NULL handle or argument, or a handle whose open failed */

/*
 * What luamig_open reads. Every field may be NULL (0 for the numbers); strings are copied, so the caller keeps
 * ownership and may free them once luamig_open returns.
 *   config           a luamig.ini (or alembic.ini) to read; NULL reads none
 *   url              the database URL (sqlite:///app.db, postgresql://...); it takes precedence over the config's
 *   script_location  the directory holding versions/ (and env.lua); relative to the current directory
 *   version_table    the version table's name (default luamig_version)
 *   lock_timeout     seconds to wait for another run holding the migration lock (default 60)
 */
typedef struct luamig_options {
  const char *config;
  const char *url;
  const char *script_location;
  const char *version_table;
  double lock_timeout;
} luamig_options;

/*
 * Loads the configuration and the migration scripts and connects to the database. Returns a new handle that the
 * caller owns and must pass to luamig_close, or NULL if memory ran out. When opening failed, the handle holds the
 * reason: luamig_errcode returns LUAMIG_ERROR and luamig_errmsg says why; every other call returns LUAMIG_MISUSE.
 */
luamig *luamig_open(const luamig_options *opts);

/* Applies migrations up to target ("head", "heads", a revision, "+1"; NULL means "head"). Returns a result code. */
int luamig_upgrade(luamig *m, const char *target);

/* Reverts migrations down to target ("-1", "base", a revision). Returns a result code. */
int luamig_downgrade(luamig *m, const char *target);

/*
 * The revision(s) the database is at, comma-separated; "" at base; NULL on error. The string belongs to the handle
 * and stays valid until the next call on it.
 */
const char *luamig_current(luamig *m);

/* The result code of the last call on m (LUAMIG_OK after a success); LUAMIG_NOMEM for a NULL handle. */
int luamig_errcode(luamig *m);

/*
 * The message of the last failure on m, in English, one line first and details after; "not an error" after a
 * success. The string belongs to the handle and stays valid until the next call on it.
 */
const char *luamig_errmsg(luamig *m);

/* Closes the database connection and frees everything m owns. NULL is a no-op. */
void luamig_close(luamig *m);

/*
 * Opens the Lua C module `luamig.core` in a Lua state the host already owns and pushes its table.
 * The table and every handle it creates belong to that Lua state.
 */
int luaopen_luamig_core(lua_State *L);

/*
 * Makes every Lua module of luamig (luamig.cli, luamig.op, ...) loadable by `require` in L from sources compiled
 * into the library, and preloads luamig.core. The host keeps ownership of L. Returns 0.
 */
int luamig_openlibs(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
