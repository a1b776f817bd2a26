/*
 * What the C tests share: check(cond, what) prints "ok - what" or "not ok - what" and counts it; tap_finish(path)
 * prints "N passed, N failed", writes "passed failed" to path (the count file scripts/test adds up, its directory
 * made when missing) and returns the exit code.
 */
#ifndef LM_TAP_H
#define LM_TAP_H
#include <stdio.h>
#include <stdlib.h>

static int passed, failed;

static void check(int cond, const char *what) {
  if (cond) {
    passed++;
    printf("ok - %s\n", what);
  } else {
    failed++;
    printf("not ok - %s\n", what);
  }
}

static int tap_finish(const char *path) {
  FILE *f;
  printf("%d passed, %d failed\n", passed, failed);
  if (path) {
    f = fopen(path, "w");
    if (f == NULL) {
      char cmd[1024];
      snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
      if (system(cmd) == 0) f = fopen(path, "w");
    }
    if (f) {
      fprintf(f, "%d %d\n", passed, failed);
      fclose(f);
    }
  }
  return failed ? 1 : 0;
}

#endif
