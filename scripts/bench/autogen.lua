-- Autogenerate and check on a large model: N tables (default 300) of ten columns each, with an index, a unique
-- constraint, a CHECK and a foreign key to the table before. Measured on SQLite and, when PG_URL_BASE names a
-- server (scripts/bench/run starts one), PostgreSQL:
--   revision --autogenerate against an empty database, and check against an up-to-date one.
-- The baseline, measured in the same run, is `luamig current` on the same project and database: connect, read
-- the version table, nothing else.
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")

local bin = assert(arg[1], "usage: autogen.lua LUAMIG_BINARY [N]")
local n = tonumber(arg[2] or "300")
local pg = os.getenv("PG_BENCH_URL")
local runs = 5

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function models(count)
  local out = { 'local model = require("luamig.model")', 'local t = require("luamig.types")' }
  for i = 1, count do
    local fk = i > 1 and string.format('  { "prev_id", t.integer, nullable = true, references = "t%04d.id", ondelete = "SET NULL" },\n', i - 1) or ""
    out[#out + 1] = string.format([[
model.Table("t%04d", {
  { "id", t.integer, primary_key = true },
  { "name", t.string(80), index = true },
  { "code", t.string(20), unique = true },
  { "amount", t.numeric(12, 2), server_default = 0 },
  { "ratio", t.float, nullable = true },
  { "active", t.boolean, server_default = true },
  { "body", t.text, nullable = true },
  { "meta", t.json, server_default = "{}" },
  { "created_at", t.datetime, server_default = model.text("(CURRENT_TIMESTAMP)") },
%s  model.check("amount >= 0", { name = "amount_positive" }),
})]], i, fk)
  end
  return table.concat(out, "\n") .. "\n"
end

local function project(dir, url)
  os.execute("rm -rf " .. lib.q(dir) .. " && mkdir -p " .. lib.q(dir .. "/versions") .. " " .. lib.q(dir .. "/myapp"))
  write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nfile_template = %%(rev)s\nmodels = myapp.models\nurl = " .. url .. "\n")
  write(dir .. "/myapp/models.lua", models(n))
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
