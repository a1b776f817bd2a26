-- Embedding and packaging as users meet them: cmake --install and a C program built with pkg-config only (and with
-- find_package), luarocks make into a fresh tree used from a plain lua5.4, and examples/custom_migrations run
-- line by line from its README.
local S = require("support")

local build = os.getenv("LUAMIG_BUILD_DIR") or (S.root .. "/build")
local sanitize = os.getenv("LUAMIG_SANITIZE") == "ON"
local asan_flags = sanitize and " -fsanitize=address,undefined" or ""

local function sh(cmd)
  local code, out = S.sh(S.clean(cmd))
  return code, out
end

describe("#cli packaging", function()
  it("cmake --install, then examples/embed_c built with pkg-config only: the first run migrates, the second finds head", function()
    local dir = S.tmpdir()
    local prefix = dir .. "/prefix"
    local code, out = sh(string.format("cmake --install %s --prefix %s 2>&1", S.q(build), S.q(prefix)))
    assert.equal(0, code, out)
    assert.is_true(S.exists(prefix .. "/include/luamig.h"))
    assert.is_true(S.exists(prefix .. "/lib/pkgconfig/luamig.pc"))
    assert(os.execute("cp -r " .. S.q(S.root .. "/examples/embed_c") .. " " .. S.q(dir .. "/app")))
    local env = string.format("PKG_CONFIG_PATH=%s/lib/pkgconfig", S.q(prefix))
    code, out = sh(string.format("cd %s/app && %s make CFLAGS='-O2 -Wall -Wextra -Werror%s' 2>&1", S.q(dir), env, asan_flags))
    assert.equal(0, code, out)
    local run = string.format("cd %s/app && LD_LIBRARY_PATH=%s/lib ./embed_c 2>&1", S.q(dir), S.q(prefix))
    code, out = sh(run)
    assert.equal(0, code, out)
    assert.equal("was at <base>, now at 3f1c0a9e5b21\n", out)
    assert.equal("migrated at start-up", S.sql(dir .. "/app/notes.db", "SELECT body FROM notes"))
    code, out = sh(run)
    assert.equal(0, code, out)
    assert.equal("was at 3f1c0a9e5b21, now at 3f1c0a9e5b21\n", out)
    assert.equal("1", S.sql(dir .. "/app/notes.db", "SELECT count(*) FROM luamig_history"))
    -- the same program through find_package(luamig)
    code, out = sh(string.format("cd %s/app && cmake -S . -B cbuild -DCMAKE_PREFIX_PATH=%s -DCMAKE_C_FLAGS='%s' >/dev/null 2>&1 "
      .. "&& cmake --build cbuild 2>&1 && rm notes.db && LD_LIBRARY_PATH=%s/lib ./cbuild/embed_c 2>&1", S.q(dir), S.q(prefix),
      asan_flags, S.q(prefix)))
    assert.equal(0, code, out)
    assert.matches("was at <base>, now at 3f1c0a9e5b21\n$", out)
    S.rmrf(dir)
  end)

  it("luarocks make into a fresh tree: a plain lua5.4 with only the tree's paths migrates, the tree's luamig runs", function()
    local dir = S.tmpdir()
    local tree = dir .. "/tree"
    local src = dir .. "/src"
    -- a copy of the sources, so that the build leaves nothing in the checkout
    assert(os.execute(string.format("mkdir -p %s && cd %s && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t %s", S.q(src),
      S.q(S.root), S.q(src))))
    local code, out = sh(string.format("cd %s && luarocks --lua-version=5.4 make rockspec/luamig-scm-1.rockspec --tree %s "
      .. "--deps-mode=none 2>&1", S.q(src), S.q(tree)))
    assert.equal(0, code, out)
    S.copy_versions(S.root .. "/versions", dir .. "/versions")
    local paths = string.format('eval "$(luarocks --lua-version=5.4 --tree %s path)"', S.q(tree))
    code, out = sh(string.format("cd %s && env -u LUA_PATH -u LUA_CPATH -u LUA_INIT sh -c %s", S.q(dir), S.q(paths
      .. " && lua5.4 -e 'local luamig = require(\"luamig\"); print(package.searchpath(\"luamig\", package.path)); "
      .. "local m = assert(luamig.open{ url = \"sqlite:///app.db\", script_location = \".\" }); "
      .. "print(assert(m:upgrade(\"head\"))); print(table.concat(assert(m:current()), \",\")); m:close()'")))
    assert.equal(0, code, out)
    assert.equal(tree .. "/share/lua/5.4/luamig/init.lua\n2\n7c2a0f93e1b4\n", out)
    code, out = sh(string.format("cd %s && env -u LUA_PATH -u LUA_CPATH %s/bin/luamig current 2>&1", S.q(dir), S.q(tree)))
    assert.equal(0, code, out)
    assert.equal("7c2a0f93e1b4 (head)\n", out)
    S.rmrf(dir)
  end)
end)

describe("#cli examples/custom_migrations", function()
  it("works as its README says, line by line", function()
    local dir = S.tmpdir()
    assert(os.execute("cp -r " .. S.q(S.root .. "/examples/custom_migrations/.") .. " " .. S.q(dir)))
    local readme = S.read(S.root .. "/examples/custom_migrations/README.md")
    local lines = {}
    for block in readme:gmatch("```sh\n(.-)```") do
      for line in block:gmatch("[^\n]+") do lines[#lines + 1] = line end
    end
    assert.is_true(#lines >= 10, "the README's steps")
    local bindir = S.bin:match("^(.*)/[^/]*$")
    for _, line in ipairs(lines) do
      local cmd = line:gsub("%s+#.*$", "")
      local want = tonumber(line:match("#%s*exit (%d)")) or 0
      local code, out = sh(string.format("cd %s && PATH=%s:$PATH %s 2>&1", S.q(dir), S.q(bindir), cmd))
      assert.equal(want, code, line .. "\n" .. out)
      if cmd == "luamig current" then assert.equal("5a0c1e7f3b2d", (out:gsub("%s+$", ""))) end
      if cmd:match("^luamig check") and want == 3 then assert.matches("%+ column users%.phone", out) end
      if cmd:match("^cat ") then
        assert.matches('op%.add_column%("users", { "phone", t%.string, nullable = true }%)', out)
        assert.matches('op%.drop_column%("users", "phone"%)', out)
      end
    end
    assert.equal("admin@example.org", S.sql(dir .. "/app.db", "SELECT email FROM users"))
    assert.equal("", S.sql(dir .. "/app.db", "SELECT name FROM pragma_table_info('users') WHERE name = 'phone'"))
    S.rmrf(dir)
  end)
end)
