/*
 * The C API when memory runs out: luamig_open + luamig_current with a Lua allocator that fails the Nth allocation
 * and every one after it, for every N up to what a successful open + current needs. Each run must end in a result
 * code (never an abort), close cleanly, and leak nothing (LeakSanitizer under scripts/test --sanitize).
 *   test_api_alloc COUNTFILE VERSIONS_DIR [STEP]   (STEP > 1 tries every STEPth N, for quick runs by hand)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luamig.h"
#include "lm_api_test.h"

static long allocations; /* growing allocations so far in this run */
static long fail_from;   /* 0: never fail */

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  /* for a new block (ptr NULL) osize is the kind of object, not a size */
  if (ptr == NULL || nsize > osize) {
    allocations++;
    if (fail_from > 0 && allocations >= fail_from) return NULL;
  }
  return realloc(ptr, nsize);
}

#include "tap.h"

/* One open + current with the allocator failing from n on; returns 0 done, 1 NOMEM, 2 ERROR, -1 a wrong outcome */
static int attempt(const luamig_options *o, long n, const char *want) {
  luamig *m;
  int rc, out = 0;
  const char *cur;
  allocations = 0;
  fail_from = n;
  m = luamig_open(o);
  if (m == NULL) return -1;
  rc = luamig_errcode(m);
  if (rc == LUAMIG_OK) {
    cur = luamig_current(m);
    rc = luamig_errcode(m);
    if (cur != NULL && (rc != LUAMIG_OK || strcmp(cur, want) != 0)) out = -1;
    if (cur == NULL && rc == LUAMIG_OK) out = -1;
  }
  if (out == 0) {
    if (rc == LUAMIG_NOMEM) out = 1;
    else if (rc == LUAMIG_ERROR) out = 2;
    else if (rc != LUAMIG_OK) out = -1;
  }
  if (out != 0 && (luamig_errmsg(m) == NULL || strcmp(luamig_errmsg(m), "not an error") == 0)) out = -1;
  if (out == -1) printf("# failing from allocation %ld: code %d, %s\n", n, rc, luamig_errmsg(m));
  luamig_close(m);
  fail_from = 0;
  return out;
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/luamig-alloc.XXXXXX"; /* a mkdtemp template: it replaces the Xs */
  char scripts[4096], url[4300], head[64], what[200];
  const char *slash, *cur;
  luamig_options o;
  luamig *m;
  long total, n, step = 1, nomem = 0, error = 0, done = 0, wrong = 0;
  if (argc < 3) {
    fprintf(stderr, "usage: test_api_alloc COUNTFILE VERSIONS_DIR [STEP]\n");
    return 2;
  }
  if (argc > 3) step = atol(argv[3]) > 0 ? atol(argv[3]) : 1;
  slash = strrchr(argv[2], '/');
  snprintf(scripts, sizeof scripts, "%.*s", slash ? (int)(slash - argv[2]) : 1, slash ? argv[2] : ".");
  if (mkdtemp(dir) == NULL) return 2;
  snprintf(url, sizeof url, "sqlite:///%s/app.db", dir);
  memset(&o, 0, sizeof o);
  o.url = url;
  o.script_location = scripts;
  lm_api_set_alloc(counting_alloc, NULL);

  /* the database at head, and how many allocations a successful open + current makes */
  m = luamig_open(&o);
  check(luamig_errcode(m) == LUAMIG_OK && luamig_upgrade(m, "head") == LUAMIG_OK, "the demo history applies");
  luamig_close(m);
  allocations = 0;
  m = luamig_open(&o);
  cur = luamig_current(m);
  total = allocations;
  snprintf(head, sizeof head, "%s", cur ? cur : "");
  luamig_close(m);
  snprintf(what, sizeof what, "a successful luamig_open + luamig_current makes %ld allocations (at %s)", total, head);
  check(total > 100 && head[0] != '\0', what);

  for (n = 1; n <= total + 1; n += step) {
    int r = attempt(&o, n, head);
    if (r == 0) done++;
    else if (r == 1) nomem++;
    else if (r == 2) error++;
    else wrong++;
  }
  printf("# %ld runs: %ld LUAMIG_NOMEM, %ld LUAMIG_ERROR, %ld done, %ld wrong\n", nomem + error + done + wrong, nomem,
    error, done, wrong);
  check(wrong == 0, "every failing allocation of open + current ends in a result code and a message, never an abort");
  check(nomem > 0, "running out of memory reports LUAMIG_NOMEM");
  check(done >= 1, "with the allocation past the last one failing, open + current succeed");

  lm_api_set_alloc(NULL, NULL);
  snprintf(url, sizeof url, "rm -rf '%s'", dir);
  if (system(url) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return tap_finish(argv[1]);
}
