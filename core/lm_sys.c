/* The few operating-system services Lua lacks: directories, clocks, time zones, terminals. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include "lm_core.h"

static int push_errno(lua_State *L, const char *what) {
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(e));
  lua_pushinteger(L, e);
  return 3;
}

/* A directory stream anchored in a userdata so that it is closed even if pushing a name raises. */
typedef struct { DIR *dir; } lm_dirbox;
#define LM_DIRBOX "luamig.dirbox"

static int dirbox_gc(lua_State *L) {
  lm_dirbox *b = (lm_dirbox *)luaL_checkudata(L, 1, LM_DIRBOX);
  if (b->dir) {
    closedir(b->dir);
    b->dir = NULL;
  }
  return 0;
}

/* An entry's place in the listing, for sorting by name. */
typedef struct {
  const char *name;
  lua_Integer at;
} lm_entry;

static int entry_cmp(const void *a, const void *b) {
  return strcmp(((const lm_entry *)a)->name, ((const lm_entry *)b)->name);
}

/* core.listdir(path [, with_signatures]) -> array of entry names (without . and ..) in byte order [, array of
   signatures, one per name: the entry's size, inode, modification and status-change times to the nanosecond,
   device and mode, packed as six native 64-bit integers ("" when the entry cannot be stat'ed); at 48 bytes, longer
   than the strings Lua interns, so 100,000 of them cost no string-table work]; or nil, message, errno */
static int lm_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int with_sigs = lua_toboolean(L, 2);
  lm_dirbox *b = (lm_dirbox *)lua_newuserdatauv(L, sizeof *b, 0);
  struct dirent *de;
  struct stat st;
  lm_entry *ents;
  lua_Integer n = 0, i;
  int names, sigs;
  b->dir = NULL;
  luaL_setmetatable(L, LM_DIRBOX);
  b->dir = opendir(path);
  if (!b->dir) return push_errno(L, path);
  lua_newtable(L);
  names = lua_gettop(L);
  lua_newtable(L);
  sigs = lua_gettop(L);
  errno = 0;
  while ((de = readdir(b->dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    lua_pushstring(L, de->d_name);
    lua_rawseti(L, names, ++n);
    if (with_sigs) {
      /* what a cache of the file's contents keys on (a copy or an edit changes the status-change time, which no
         tool sets back) */
      if (fstatat(dirfd(b->dir), de->d_name, &st, 0) == 0) {
        int64_t sig[6];
        sig[0] = (int64_t)st.st_size;
        sig[1] = (int64_t)st.st_ino;
        sig[2] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        sig[3] = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
        sig[4] = (int64_t)st.st_dev;
        sig[5] = (int64_t)st.st_mode;
        lua_pushlstring(L, (const char *)sig, sizeof sig);
      }
      else
        lua_pushliteral(L, "");
      lua_rawseti(L, sigs, n);
    }
  }
  closedir(b->dir);
  b->dir = NULL;
  /* sort by name: the strings stay alive in the names table while their pointers are sorted */
  ents = (lm_entry *)lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *ents, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, names, i);
    ents[i - 1].name = lua_tostring(L, -1);
    ents[i - 1].at = i;
    lua_pop(L, 1);
  }
  qsort(ents, (size_t)n, sizeof *ents, entry_cmp);
  lua_createtable(L, (int)n, 0);
  if (with_sigs) lua_createtable(L, (int)n, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, names, ents[i - 1].at);
    lua_rawseti(L, with_sigs ? -3 : -2, i);
    if (with_sigs) {
      lua_rawgeti(L, sigs, ents[i - 1].at);
      lua_rawseti(L, -2, i);
    }
  }
  return with_sigs ? 2 : 1;
}

/* core.filetype(path) -> "file" | "directory" | "other", or nil, message, errno */
static int lm_filetype(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return push_errno(L, path);
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
  return 1;
}

/* core.mkdir(path) -> true, or nil, message, errno */
static int lm_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mkdir(path, 0777) != 0) return push_errno(L, path);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.realpath(path) -> absolute canonical path, or nil, message, errno */
static int lm_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (!realpath(path, buf)) return push_errno(L, path);
  lua_pushstring(L, buf);
  return 1;
}

/* core.getcwd() -> the current directory */
static int lm_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (!getcwd(buf, sizeof buf)) return push_errno(L, "getcwd");
  lua_pushstring(L, buf);
  return 1;
}

/* core.clock() -> seconds of a monotonic clock, as a float */
static int lm_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* core.now() -> wall-clock seconds since the epoch, as a float with millisecond precision */
static int lm_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)(ts.tv_nsec / 1000000) / 1e3);
  return 1;
}

static void set_int(lua_State *L, const char *k, long v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/*
 * core.localtime(epoch_seconds, tzname) -> { year, month, day, hour, minute, second, utcoff = seconds, zone = "CET" }
 * tzname is an IANA name ("Europe/Oslo"), "UTC", or "" for the process's local zone. An unknown name is an error.
 */
static int lm_localtime(lua_State *L) {
  time_t t = (time_t)luaL_checkinteger(L, 1);
  const char *tz = luaL_optstring(L, 2, "");
  struct tm tmv;
  char *saved = NULL;
  const char *old = getenv("TZ");
  const int switch_tz = *tz != '\0'; /* fixed before setenv, which the analyzer assumes may change *tz */
  int ok;
  if (switch_tz) {
    char path[PATH_MAX];
    if (strcmp(tz, "UTC") != 0 && strcmp(tz, "utc") != 0) {
      struct stat st;
      if (strstr(tz, "..") || snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz) >= (int)sizeof path ||
          stat(path, &st) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "unknown time zone '%s'", tz);
        return 2;
      }
    }
    if (old) saved = strdup(old);
    setenv("TZ", tz, 1);
    tzset();
  }
  ok = localtime_r(&t, &tmv) != NULL;
  if (switch_tz) {
    if (saved) {
      setenv("TZ", saved, 1);
      free(saved);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  if (!ok) return push_errno(L, "localtime");
  lua_createtable(L, 0, 8);
  set_int(L, "year", tmv.tm_year + 1900);
  set_int(L, "month", tmv.tm_mon + 1);
  set_int(L, "day", tmv.tm_mday);
  set_int(L, "hour", tmv.tm_hour);
  set_int(L, "minute", tmv.tm_min);
  set_int(L, "second", tmv.tm_sec);
  set_int(L, "utcoff", tmv.tm_gmtoff);
  lua_pushstring(L, tmv.tm_zone ? tmv.tm_zone : "");
  lua_setfield(L, -2, "zone");
  return 1;
}

/*
 * core.poll(fds, seconds) -> a table fd -> true of the descriptors ready for reading (or closed, or in error),
 * waiting at most seconds (0: a look; fractions allowed) and resuming after signals.
 */
static int lm_poll(lua_State *L) {
  lua_Number secs = luaL_optnumber(L, 2, 0);
  int n, i, rc, ms;
  struct pollfd *p;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (int)lua_rawlen(L, 1);
  p = (struct pollfd *)lua_newuserdatauv(L, sizeof *p * (size_t)(n > 0 ? n : 1), 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    p[i].fd = (int)luaL_checkinteger(L, -1);
    p[i].events = POLLIN;
    p[i].revents = 0;
    lua_pop(L, 1);
  }
  ms = secs <= 0 ? 0 : (secs > 3600 ? 3600000 : (int)(secs * 1000 + 0.999));
  do rc = poll(p, (nfds_t)n, ms);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return push_errno(L, "poll");
  lua_createtable(L, 0, rc > 0 ? rc : 0);
  for (i = 0; i < n; i++) {
    if (p[i].revents == 0) continue;
    lua_pushboolean(L, 1);
    lua_rawseti(L, -2, p[i].fd);
  }
  return 1;
}

/* core.sleep(seconds): sleeps that long (fractions allowed), resuming after signals */
static int lm_sleep(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  struct timespec ts, rem;
  if (secs <= 0) return 0;
  ts.tv_sec = (time_t)secs;
  ts.tv_nsec = (long)((secs - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR) ts = rem;
  return 0;
}

/* core.isatty(fd) -> boolean */
static int lm_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* core.getpid() -> integer */
static int lm_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* core.hostname() -> the machine's host name */
static int lm_hostname(lua_State *L) {
  char buf[256];
  if (gethostname(buf, sizeof buf - 1) != 0) return push_errno(L, "gethostname");
  buf[sizeof buf - 1] = '\0';
  lua_pushstring(L, buf);
  return 1;
}

/* core.pid_alive(pid) -> whether a process with that id exists on this machine (in this pid namespace) */
static int lm_pid_alive(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  if (pid <= 0 || pid > INT_MAX) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, kill((pid_t)pid, 0) == 0 || errno == EPERM);
  return 1;
}

static const luaL_Reg sys_funcs[] = {
  {"listdir", lm_listdir}, {"filetype", lm_filetype}, {"mkdir", lm_mkdir}, {"realpath", lm_realpath},
  {"getcwd", lm_getcwd},   {"clock", lm_clock},       {"now", lm_now},     {"localtime", lm_localtime},
  {"isatty", lm_isatty},   {"getpid", lm_getpid},     {"sleep", lm_sleep},
  {"poll", lm_poll}, {"hostname", lm_hostname}, {"pid_alive", lm_pid_alive}, {NULL, NULL}};

void lm_sys_register(lua_State *L) {
  if (luaL_newmetatable(L, LM_DIRBOX)) {
    lua_pushcfunction(L, dirbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, sys_funcs, 0);
}
