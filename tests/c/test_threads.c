/*
 * The C API under threads: eight threads of one host, each with its own luamig handle, upgrade one SQLite database
 * at the same moment, five rounds. Every call must succeed, every handle must end at head, and each migration must
 * be applied exactly once (its luamig_history rows counted with SQLite directly). Also the API's error paths: a bad
 * URL, an unknown target, a NULL handle. Prints ok/not ok lines, ends with "N passed, N failed", and writes
 * "passed failed" to argv[1]. argv[2] is the demo versions/ directory.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "luamig.h"

#define THREADS 8
#define ROUNDS 5
#define HEAD "7c2a0f93e1b4"

#include "tap.h"

typedef struct {
  const char *url;
  const char *scripts;
  pthread_barrier_t *start;
  int rc;
  char current[64];
  char err[512];
} job;

static void *run(void *arg) {
  job *j = (job *)arg;
  luamig_options o;
  luamig *m;
  const char *cur;
  memset(&o, 0, sizeof o);
  o.url = j->url;
  o.script_location = j->scripts;
  m = luamig_open(&o);
  pthread_barrier_wait(j->start);
  if (m == NULL) {
    j->rc = LUAMIG_NOMEM;
    return NULL;
  }
  j->rc = luamig_errcode(m);
  if (j->rc == LUAMIG_OK) j->rc = luamig_upgrade(m, "head");
  if (j->rc != LUAMIG_OK) snprintf(j->err, sizeof j->err, "%s", luamig_errmsg(m));
  cur = j->rc == LUAMIG_OK ? luamig_current(m) : NULL;
  snprintf(j->current, sizeof j->current, "%s", cur ? cur : "(none)");
  luamig_close(m);
  return NULL;
}

static int count(const char *path, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int n = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/luamig-threads.XXXXXX"; /* a mkdtemp template: it replaces the Xs */
  char scripts[4096], path[4200], url[4300], what[256];
  const char *slash;
  int round, i;
  if (argc < 3) {
    fprintf(stderr, "usage: test_threads COUNTFILE VERSIONS_DIR\n");
    return 2;
  }
  slash = strrchr(argv[2], '/');
  snprintf(scripts, sizeof scripts, "%.*s", slash ? (int)(slash - argv[2]) : 1, slash ? argv[2] : ".");
  if (mkdtemp(dir) == NULL) return 2;
  for (round = 1; round <= ROUNDS; round++) {
    pthread_t th[THREADS];
    job jobs[THREADS];
    pthread_barrier_t start;
    int all_ok = 1, all_head = 1;
    snprintf(path, sizeof path, "%s/round%d.db", dir, round);
    snprintf(url, sizeof url, "sqlite:///%s", path);
    pthread_barrier_init(&start, NULL, THREADS);
    for (i = 0; i < THREADS; i++) {
      memset(&jobs[i], 0, sizeof jobs[i]);
      jobs[i].url = url;
      jobs[i].scripts = scripts;
      jobs[i].start = &start;
      pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    for (i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (i = 0; i < THREADS; i++) {
      if (jobs[i].rc != LUAMIG_OK) {
        all_ok = 0;
        printf("# round %d thread %d: %d %s\n", round, i, jobs[i].rc, jobs[i].err);
      }
      if (strcmp(jobs[i].current, HEAD) != 0) all_head = 0;
    }
    snprintf(what, sizeof what, "round %d: %d threads' luamig_upgrade all return LUAMIG_OK", round, THREADS);
    check(all_ok, what);
    snprintf(what, sizeof what, "round %d: every handle's luamig_current is " HEAD, round);
    check(all_head, what);
    snprintf(what, sizeof what, "round %d: each of the 2 migrations applied once, the version table at head", round);
    check(count(path, "SELECT count(*) FROM luamig_history WHERE direction = 'upgrade' AND status = 'applied'") == 2 &&
              count(path, "SELECT count(*) FROM luamig_version WHERE version_num = '" HEAD "'") == 1 &&
              count(path, "SELECT count(*) FROM sqlite_master WHERE name = 'tasks'") == 1,
          what);
    unlink(path);
  }
  {
    luamig_options o;
    luamig *m;
    memset(&o, 0, sizeof o);
    o.url = "nosuch://user:secret@host/db";
    o.script_location = scripts;
    m = luamig_open(&o);
    check(m != NULL && luamig_errcode(m) == LUAMIG_ERROR && strstr(luamig_errmsg(m), "bad database URL") != NULL &&
              strstr(luamig_errmsg(m), "secret") == NULL,
          "a bad URL: luamig_open reports it (password masked), and the handle refuses work");
    check(luamig_upgrade(m, "head") == LUAMIG_MISUSE, "a handle whose open failed returns LUAMIG_MISUSE");
    luamig_close(m);
    snprintf(path, sizeof path, "%s/errors.db", dir);
    snprintf(url, sizeof url, "sqlite:///%s", path);
    o.url = url;
    m = luamig_open(&o);
    check(luamig_errcode(m) == LUAMIG_OK && strcmp(luamig_errmsg(m), "not an error") == 0, "luamig_open succeeds");
    check(luamig_current(m) != NULL && strcmp(luamig_current(m), "") == 0, "luamig_current is \"\" at base");
    check(luamig_upgrade(m, "nosuch") == LUAMIG_ERROR &&
              strcmp(luamig_errmsg(m), "No such revision or branch 'nosuch'") == 0,
          "an unknown target: LUAMIG_ERROR and the message");
    check(luamig_upgrade(m, NULL) == LUAMIG_OK && strcmp(luamig_current(m), HEAD) == 0, "NULL target upgrades to head");
    check(luamig_downgrade(m, "-1") == LUAMIG_OK && strcmp(luamig_current(m), "4d869b5fb06e") == 0, "downgrade -1");
    check(luamig_downgrade(m, NULL) == LUAMIG_MISUSE, "downgrade without a target is misuse");
    luamig_close(m);
    unlink(path);
    check(luamig_upgrade(NULL, "head") == LUAMIG_MISUSE && luamig_current(NULL) == NULL, "a NULL handle is misuse");
    luamig_close(NULL);
  }
  rmdir(dir);
  return tap_finish(argv[1]);
}
