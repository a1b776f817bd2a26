/*
 * A service that migrates its SQLite database at start-up through libluamig, then prints where it is.
 *   ./embed_c [DATABASE_URL]      (default sqlite:///notes.db, migrations in ./versions)
 */
#include <stdio.h>
#include <string.h>
#include "luamig.h"

int main(int argc, char **argv) {
  luamig_options opts;
  luamig *m;
  const char *before;
  char was[256];
  memset(&opts, 0, sizeof opts);
  opts.url = argc > 1 ? argv[1] : "sqlite:///notes.db";
  opts.script_location = ".";
  m = luamig_open(&opts);
  if (m == NULL || luamig_errcode(m) != LUAMIG_OK) {
    fprintf(stderr, "embed_c: %s\n", m ? luamig_errmsg(m) : "out of memory");
    luamig_close(m);
    return 1;
  }
  before = luamig_current(m);
  snprintf(was, sizeof was, "%s", before && *before ? before : "<base>");
  if (luamig_upgrade(m, "head") != LUAMIG_OK) {
    fprintf(stderr, "embed_c: %s\n", luamig_errmsg(m));
    luamig_close(m);
    return 1;
  }
  printf("was at %s, now at %s\n", was, luamig_current(m));
  luamig_close(m);
  return 0;
}
