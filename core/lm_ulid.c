/* ULIDs (48-bit millisecond time + 80 random bits, Crockford base32) and random hex ids. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <errno.h>
#include "lm_core.h"

int lm_random_bytes(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Monotonic within one process: a second ULID in the same millisecond increments the random part. */
static unsigned long long last_ms;
static unsigned char last_rand[10];

/* core.ulid() -> 26-character string */
static int lm_ulid(lua_State *L) {
  struct timespec ts;
  unsigned long long ms;
  unsigned char bytes[16];
  char out[26];
  int i;
  clock_gettime(CLOCK_REALTIME, &ts);
  ms = (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)(ts.tv_nsec / 1000000);
  if (ms <= last_ms) {
    ms = last_ms;
    for (i = 9; i >= 0; i--)
      if (++last_rand[i] != 0) break;
  } else {
    if (lm_random_bytes(last_rand, sizeof last_rand) != 0)
      return luaL_error(L, "ulid: no randomness available: %s", strerror(errno));
    last_ms = ms;
  }
  for (i = 0; i < 6; i++) bytes[i] = (unsigned char)(ms >> (8 * (5 - i)));
  memcpy(bytes + 6, last_rand, 10);
  /* 128 bits -> 26 base32 digits, most significant first (the first digit holds 3 bits). */
  for (i = 25; i >= 0; i--) {
    int bit = (25 - i) * 5, v = 0, k;
    for (k = 0; k < 5; k++) {
      int b = bit + k;
      if (b < 128 && (bytes[15 - b / 8] >> (b % 8)) & 1) v |= 1 << k;
    }
    out[i] = crockford[v];
  }
  lua_pushlstring(L, out, 26);
  return 1;
}

/* core.random_hex(nbytes) -> 2*nbytes lower-case hex characters */
static int lm_random_hex(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  unsigned char buf[64];
  char out[128];
  static const char hex[] = "0123456789abcdef";
  lua_Integer i;
  luaL_argcheck(L, n > 0 && n <= 64, 1, "between 1 and 64 bytes");
  if (lm_random_bytes(buf, (size_t)n) != 0)
    return luaL_error(L, "random_hex: no randomness available: %s", strerror(errno));
  for (i = 0; i < n; i++) {
    out[2 * i] = hex[buf[i] >> 4];
    out[2 * i + 1] = hex[buf[i] & 15];
  }
  lua_pushlstring(L, out, (size_t)(2 * n));
  return 1;
}

void lm_ulid_register(lua_State *L) {
  lua_pushcfunction(L, lm_ulid);
  lua_setfield(L, -2, "ulid");
  lua_pushcfunction(L, lm_random_hex);
  lua_setfield(L, -2, "random_hex");
}
