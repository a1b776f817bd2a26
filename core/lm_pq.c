/* Loading libpq on first use: see lm_pq.h. */
#define _GNU_SOURCE
#define LM_PQ_IMPL
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include "lm_pq.h"

lm_pq_api lm_pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *load_error;
static char load_error_buf[512];

/* Each symbol by name into its slot; a slot is a function pointer, copied from dlsym's object pointer bytewise
   (ISO C has no conversion between the two). */
static int bind(void *lib, void *slot, const char *name) {
  void *sym = dlsym(lib, name);
  if (sym == NULL) return 0;
  memcpy(slot, &sym, sizeof sym);
  return 1;
}

static void load(void) {
  static const char *const sonames[] = {"libpq.so.5", "libpq.so"};
  void *lib = NULL;
  size_t i;
  for (i = 0; i < sizeof sonames / sizeof sonames[0] && lib == NULL; i++) lib = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror();
    strncpy(load_error_buf, e ? e : "libpq.so.5 not found", sizeof load_error_buf - 1);
    load_error = load_error_buf;
    return;
  }
  if (!(bind(lib, &lm_pq.connectdb, "PQconnectdb") && bind(lib, &lm_pq.finish, "PQfinish") &&
        bind(lib, &lm_pq.status, "PQstatus") && bind(lib, &lm_pq.transactionStatus, "PQtransactionStatus") &&
        bind(lib, &lm_pq.errorMessage, "PQerrorMessage") &&
        bind(lib, &lm_pq.setNoticeProcessor, "PQsetNoticeProcessor") && bind(lib, &lm_pq.exec, "PQexec") &&
        bind(lib, &lm_pq.execParams, "PQexecParams") && bind(lib, &lm_pq.prepare, "PQprepare") &&
        bind(lib, &lm_pq.execPrepared, "PQexecPrepared") && bind(lib, &lm_pq.resultStatus, "PQresultStatus") &&
        bind(lib, &lm_pq.resultErrorMessage, "PQresultErrorMessage") &&
        bind(lib, &lm_pq.resultErrorField, "PQresultErrorField") && bind(lib, &lm_pq.ntuples, "PQntuples") &&
        bind(lib, &lm_pq.nfields, "PQnfields") && bind(lib, &lm_pq.fname, "PQfname") &&
        bind(lib, &lm_pq.ftype, "PQftype") && bind(lib, &lm_pq.cmdTuples, "PQcmdTuples") &&
        bind(lib, &lm_pq.getvalue, "PQgetvalue") && bind(lib, &lm_pq.getlength, "PQgetlength") &&
        bind(lib, &lm_pq.getisnull, "PQgetisnull") && bind(lib, &lm_pq.clear, "PQclear") &&
        bind(lib, &lm_pq.backendPID, "PQbackendPID") && bind(lib, &lm_pq.socket, "PQsocket") &&
        bind(lib, &lm_pq.sendQuery, "PQsendQuery") && bind(lib, &lm_pq.sendQueryParams, "PQsendQueryParams") &&
        bind(lib, &lm_pq.consumeInput, "PQconsumeInput") && bind(lib, &lm_pq.isBusy, "PQisBusy") &&
        bind(lib, &lm_pq.getResult, "PQgetResult"))) {
    load_error = "libpq.so.5 lacks a function luamig needs";
    memset(&lm_pq, 0, sizeof lm_pq);
  }
}

const char *lm_pq_load(void) {
  pthread_once(&once, load);
  return load_error;
}
