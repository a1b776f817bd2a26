-- Autogenerate and check on a large model: N tables (default 300) of lib.lua_models (seven columns each, an index, a
-- unique constraint, a CHECK and a foreign key to the first table). Measured on SQLite and, when PG_BENCH_URL names a
-- server (scripts/bench/run starts one), PostgreSQL:
--   revision --autogenerate against an empty database, and check against an up-to-date one.
-- The baseline, measured in the same run, is `luamig current` on the same project and database: connect, read
-- the version table, nothing else.
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")

local bin = assert(arg[1], "usage: autogen.lua LUAMIG_BINARY [N]")
local n = tonumber(arg[2] or "300")
local pg = os.getenv("PG_BENCH_URL")
local runs = 5

local function project(dir, url)
  os.execute("rm -rf " .. lib.q(dir) .. " && mkdir -p " .. lib.q(dir .. "/versions") .. " " .. lib.q(dir .. "/myapp"))
  lib.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nfile_template = %%(rev)s\nmodels = myapp.models\nurl = " .. url .. "\n")
  lib.write(dir .. "/myapp/models.lua", lib.lua_models(n))
end

local function psql(sql)
  assert(os.execute(string.format("PGOPTIONS='-c client_min_messages=warning' psql -X -q %s -c %s >/dev/null",
    lib.q((pg:gsub("/bench_ag%?", "/postgres?"))), lib.q(sql))))
end

local function cell(t, base) return string.format("%s (%s) %s, %.1fx", lib.fmt_s(t.wall), lib.fmt_s(t.best), lib.fmt_s(t.cpu), t.wall / base.wall) end

print(string.format("%d tables; median (best) wall, median CPU, and the ratio to `current` on the same database", n))
local tmp = os.getenv("TMPDIR") or "/tmp"
local targets = { { name = "sqlite", url = "sqlite:///./app.db" } }
if pg then targets[2] = { name = "postgresql", url = pg } end
for _, tg in ipairs(targets) do
  local dir = string.format("%s/luamig-bench-autogen-%s", tmp, tg.name)
  local reset
  if tg.name == "sqlite" then
    reset = function() os.remove(dir .. "/app.db") end
  else
    reset = function()
      psql("DROP DATABASE IF EXISTS bench_ag")
      psql("CREATE DATABASE bench_ag")
    end
  end
  project(dir, tg.url)
  reset()
  local cd = "cd " .. lib.q(dir) .. " && "
  local base = lib.time(cd .. lib.q(bin) .. " current", runs)
  local gen = lib.time(cd .. "rm -f versions/*.lua && " .. lib.q(bin) .. " -q revision --autogenerate -m all --rev-id m1", runs)
  assert(os.execute(cd .. lib.q(bin) .. " -q upgrade head >/dev/null"))
  local check = lib.time(cd .. lib.q(bin) .. " -q check", runs)
  print(string.format("%-10s | current %s | autogenerate, empty database: %s | check, up to date: %s", tg.name,
    lib.fmt_s(base.wall), cell(gen, base), cell(check, base)))
  os.execute("rm -rf " .. lib.q(dir))
  if tg.name ~= "sqlite" then psql("DROP DATABASE IF EXISTS bench_ag") end
end
