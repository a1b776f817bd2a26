/*
 * SHA-256 (GNU Nettle) for the checksums of applied migration files, and the one-pass loader of migration files
 * that reads, hashes and compiles them.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nettle/sha2.h>
#include "lm_core.h"

#define LM_FILEBOX "luamig.filebox"

/* A file descriptor anchored in a userdata, so that it is closed even if a Lua error is raised while it is open. */
typedef struct {
  int fd;
} lm_filebox;

static int filebox_gc(lua_State *L) {
  lm_filebox *b = (lm_filebox *)luaL_checkudata(L, 1, LM_FILEBOX);
  if (b->fd >= 0) {
    close(b->fd);
    b->fd = -1;
  }
  return 0;
}

/* Pushes nil, "path: strerror(e)", e and returns 3 (the luaL_fileresult shape). */
static int file_error(lua_State *L, const char *path, int e) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", path, strerror(e));
  lua_pushinteger(L, e);
  return 3;
}


/* Writes the 64 hex characters of a finished digest to out. */
static void hex_digest(struct sha256_ctx *ctx, char *out) {
  static const char hex[] = "0123456789abcdef";
  uint8_t md[SHA256_DIGEST_SIZE];
  int i;
  sha256_digest(ctx, SHA256_DIGEST_SIZE, md);
  for (i = 0; i < SHA256_DIGEST_SIZE; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
}

/* The 64-bit finalizer of MurmurHash3: every input bit affects every output bit. */
static uint64_t mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/*
 * core.digest(s) -> 16 lower-case hex characters: a 64-bit hash of s, eight bytes a step. Not cryptographic: it is
 * what the caches store beside their bytecode to tell bytes that are not what was written (a truncated or damaged
 * file) from the real thing, at a tenth of SHA-256's cost on a 1 MB cache. (Whoever can write the cache can write
 * the migrations themselves.)
 */
static int lm_digest(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  size_t len, i;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &len);
  uint64_t h = 0x9e3779b97f4a7c15ULL, w;
  char out[16];
  int k;
  for (i = 0; i + 8 <= len; i += 8) {
    memcpy(&w, p + i, 8);
    h = mix64(h ^ (w * 0x87c37b91114253d5ULL)) + i;
  }
  w = 0;
  for (k = 0; i < len; i++, k++) w |= (uint64_t)p[i] << (8 * k);
  h = mix64(h ^ (w * 0x4cf5ad432745937fULL));
  h = mix64(h ^ ((uint64_t)len * 0x100000001b3ULL));
  for (k = 15; k >= 0; k--) {
    out[k] = hex[h & 15];
    h >>= 4;
  }
  lua_pushlstring(L, out, sizeof out);
  return 1;
}

/* core.sha256(s) -> 64 lower-case hex characters */
static int lm_sha256(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  struct sha256_ctx ctx;
  char out[2 * SHA256_DIGEST_SIZE];
  sha256_init(&ctx);
  sha256_update(&ctx, len, (const uint8_t *)s);
  hex_digest(&ctx, out);
  lua_pushlstring(L, out, sizeof out);
  return 1;
}

/*
 * core.load_migration(path, chunkname, env) -> chunk, checksum, message; or nil, message (a read or syntax error,
 * naming chunkname and line).
 * Reads the file once, hashes it with CRLF line endings normalised to LF, takes the "--- message" of its first
 * line, and compiles it as text with env as its _ENV. The caller runs the chunk.
 */
/* Pushes the whole file at path as a string (one read for the size fstat saw; a short read is retried, an early
   EOF ends it); or returns file_error's results. A file box on the stack closes the descriptor on any error. */
static int push_file(lua_State *L, const char *path) {
  lm_filebox *fb;
  struct stat st;
  luaL_Buffer b;
  fb = (lm_filebox *)lua_newuserdatauv(L, sizeof *fb, 0);
  fb->fd = -1;
  luaL_setmetatable(L, LM_FILEBOX);
  fb->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fb->fd < 0) return file_error(L, path, errno);
  if (fstat(fb->fd, &st) != 0) return file_error(L, path, errno);
  if (S_ISDIR(st.st_mode)) return file_error(L, path, EISDIR);
  {
    size_t size = (size_t)st.st_size, got = 0;
    char *p = luaL_buffinitsize(L, &b, size > 0 ? size : 1);
    while (got < size) {
      ssize_t n = read(fb->fd, p + got, size - got);
      if (n < 0) {
        if (errno == EINTR) continue;
        return file_error(L, path, errno);
      }
      if (n == 0) break;
      got += (size_t)n;
    }
    luaL_addsize(&b, got);
  }
  close(fb->fd);
  fb->fd = -1;
  luaL_pushresult(&b);
  lua_remove(L, -2); /* the file box */
  return 0;
}

/* core.read_source(path) -> the file's text, or nil, message */
static int lm_read_source(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int n = push_file(L, path);
  return n ? n : 1;
}

static int lm_load_migration(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *chunkname = luaL_checkstring(L, 2);
  struct sha256_ctx ctx;
  char out[2 * SHA256_DIGEST_SIZE];
  size_t len, start, end;
  const char *src, *msg;
  int has_cr = 0, n;
  luaL_checktype(L, 3, LUA_TTABLE);
  n = push_file(L, path);
  if (n) return n;
  src = lua_tolstring(L, -1, &len);
  if (memchr(src, '\r', len) != NULL) has_cr = 1;
  sha256_init(&ctx);
  if (!has_cr) {
    sha256_update(&ctx, len, (const uint8_t *)src);
  } else {
    /* hash the text with each CRLF as LF, in runs between the CRs that are dropped */
    size_t run = 0, k;
    for (k = 0; k < len; k++) {
      if (src[k] == '\r' && k + 1 < len && src[k + 1] == '\n') {
        sha256_update(&ctx, k - run, (const uint8_t *)src + run);
        run = k + 1;
      }
    }
    sha256_update(&ctx, len - run, (const uint8_t *)src + run);
  }
  hex_digest(&ctx, out);
  if (luaL_loadbufferx(L, src, len, chunkname, "t") != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushvalue(L, 3);
  if (lua_setupvalue(L, -2, 1) == NULL) lua_pop(L, 1);
  lua_pushlstring(L, out, sizeof out);
  /* "--- message" on the first line */
  msg = "";
  start = end = 0;
  if (len >= 3 && src[0] == '-' && src[1] == '-' && src[2] == '-') {
    start = 3;
    while (start < len && (src[start] == ' ' || src[start] == '\t')) start++;
    end = start;
    while (end < len && src[end] != '\n' && src[end] != '\r') end++;
    msg = src + start;
  }
  lua_pushlstring(L, msg, end - start);
  return 3;
}

void lm_hash_register(lua_State *L) {
  if (luaL_newmetatable(L, LM_FILEBOX)) {
    lua_pushcfunction(L, filebox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, lm_sha256);
  lua_setfield(L, -2, "sha256");
  lua_pushcfunction(L, lm_digest);
  lua_setfield(L, -2, "digest");
  lua_pushcfunction(L, lm_load_migration);
  lua_setfield(L, -2, "load_migration");
  lua_pushcfunction(L, lm_read_source);
  lua_setfield(L, -2, "read_source");
}
