/*
 * libpq, loaded when the first PostgreSQL connection is made rather than when luamig starts: SQLite users (and every
 * command that needs no PostgreSQL) do not pay for mapping libpq and what it pulls in (TLS, Kerberos, LDAP).
 * lm_pg.c calls PQ* through these pointers; lm_pq_load() fills them once (thread-safe).
 */
#ifndef LM_PQ_H
#define LM_PQ_H

#include <libpq-fe.h>

typedef struct {
  PGconn *(*connectdb)(const char *);
  void (*finish)(PGconn *);
  ConnStatusType (*status)(const PGconn *);
  PGTransactionStatusType (*transactionStatus)(const PGconn *);
  char *(*errorMessage)(const PGconn *);
  PQnoticeProcessor (*setNoticeProcessor)(PGconn *, PQnoticeProcessor, void *);
  PGresult *(*exec)(PGconn *, const char *);
  PGresult *(*execParams)(PGconn *, const char *, int, const Oid *, const char *const *, const int *, const int *, int);
  PGresult *(*prepare)(PGconn *, const char *, const char *, int, const Oid *);
  PGresult *(*execPrepared)(PGconn *, const char *, int, const char *const *, const int *, const int *, int);
  ExecStatusType (*resultStatus)(const PGresult *);
  char *(*resultErrorMessage)(const PGresult *);
  char *(*resultErrorField)(const PGresult *, int);
  int (*ntuples)(const PGresult *);
  int (*nfields)(const PGresult *);
  char *(*fname)(const PGresult *, int);
  Oid (*ftype)(const PGresult *, int);
  char *(*cmdTuples)(PGresult *);
  char *(*getvalue)(const PGresult *, int, int);
  int (*getlength)(const PGresult *, int, int);
  int (*getisnull)(const PGresult *, int, int);
  void (*clear)(PGresult *);
  int (*backendPID)(const PGconn *);
  int (*socket)(const PGconn *);
  int (*sendQuery)(PGconn *, const char *);
  int (*sendQueryParams)(PGconn *, const char *, int, const Oid *, const char *const *, const int *, const int *, int);
  int (*consumeInput)(PGconn *);
  int (*isBusy)(PGconn *);
  PGresult *(*getResult)(PGconn *);
} lm_pq_api;

extern lm_pq_api lm_pq;

/* Loads libpq once; returns NULL, or why it could not be loaded (a static string). */
const char *lm_pq_load(void);

#ifndef LM_PQ_IMPL
#define PQconnectdb lm_pq.connectdb
#define PQfinish lm_pq.finish
#define PQstatus lm_pq.status
#define PQtransactionStatus lm_pq.transactionStatus
#define PQerrorMessage lm_pq.errorMessage
#define PQsetNoticeProcessor lm_pq.setNoticeProcessor
#define PQexec lm_pq.exec
#define PQexecParams lm_pq.execParams
#define PQprepare lm_pq.prepare
#define PQexecPrepared lm_pq.execPrepared
#define PQresultStatus lm_pq.resultStatus
#define PQresultErrorMessage lm_pq.resultErrorMessage
#define PQresultErrorField lm_pq.resultErrorField
#define PQntuples lm_pq.ntuples
#define PQnfields lm_pq.nfields
#define PQfname lm_pq.fname
#define PQftype lm_pq.ftype
#define PQcmdTuples lm_pq.cmdTuples
#define PQgetvalue lm_pq.getvalue
#define PQgetlength lm_pq.getlength
#define PQgetisnull lm_pq.getisnull
#define PQclear lm_pq.clear
#define PQbackendPID lm_pq.backendPID
#define PQsocket lm_pq.socket
#define PQsendQuery lm_pq.sendQuery
#define PQsendQueryParams lm_pq.sendQueryParams
#define PQconsumeInput lm_pq.consumeInput
#define PQisBusy lm_pq.isBusy
#define PQgetResult lm_pq.getResult
#endif

#endif
