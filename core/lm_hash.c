/* SHA-256 through OpenSSL's EVP interface: checksums of applied migration files. */
#include <openssl/evp.h>
#include "lm_core.h"

/* core.sha256(s) -> 64 lower-case hex characters */
static int lm_sha256(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  static const char hex[] = "0123456789abcdef";
  char out[2 * EVP_MAX_MD_SIZE];
  unsigned int i;
  if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1)
    return luaL_error(L, "sha256: digest failed");
  for (i = 0; i < mdlen; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  lua_pushlstring(L, out, 2 * (size_t)mdlen);
  return 1;
}

void lm_hash_register(lua_State *L) {
  lua_pushcfunction(L, lm_sha256);
  lua_setfield(L, -2, "sha256");
}
