-- luarocks --lua-version=5.4 make rockspec/luamig-scm-1.rockspec
-- (add --deps-mode=none where no rocks server is reachable and the system's lua-lpeg provides lpeg)
rockspec_format = "3.0"
package = "luamig"
version = "scm-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "Database schema migrations for SQLite and PostgreSQL, driven by Lua 5.4",
  detailed = [[
Alembic's workflow for the Lua world: migration files, a revision graph with branches and merges, models and
autogenerate, a migration lock so many replicas can start at once, atomic migrations on SQLite too, checksums.
Installs the Lua module (require "luamig"), its C core (luamig.core) and the luamig command.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4",
  "lpeg",
}
external_dependencies = {
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
  PQ = { library = "pq" },
  NETTLE = { header = "nettle/sha2.h", library = "nettle" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    LUAMIG_LUADIR = "$(LUADIR)",
    LUAMIG_CMODDIR = "$(LIBDIR)",
    LUAMIG_BINDIR = "$(BINDIR)",
    LUAMIG_INSTALL_LIBS = "OFF",
    LUAMIG_TESTS = "OFF",
  },
}
