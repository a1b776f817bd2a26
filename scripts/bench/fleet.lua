-- A fleet of schemas in one database: `luamig upgrade head --targets FILE --parallel 4` against the loop a user
-- writes without it (one `luamig --schema NAME upgrade head` per schema, in turn), measured in the same run on
-- the same server, each on schemas of its own. Each migration is a light one, as most are: the first creates a
-- table, the others add a column or an index to it. Then the failure case, untimed: a third fleet of its own
-- schemas in which the middle tenant already has a table named like the index migration 4 makes; that tenant is
-- named as failed, the rest reach head, and after the table is dropped a rerun migrates only that tenant.
-- usage: PG_BENCH_URL=postgresql:///db?host=... lua5.4 scripts/bench/fleet.lua LUAMIG_BINARY [SCHEMAS] [MIGRATIONS]
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")

local bin = assert(arg[1], "usage: fleet.lua LUAMIG_BINARY [SCHEMAS] [MIGRATIONS]")
local n = tonumber(arg[2] or "1000")
local m = tonumber(arg[3] or "20")
local url = assert(os.getenv("PG_BENCH_URL"), "PG_BENCH_URL names the benchmark's database")
local host, db = url:match("[?&]host=([^&]+)"), url:match("^postgresql:///([^?]+)")
local tmp = os.getenv("TMPDIR") or "/tmp"
local dir = string.format("%s/luamig-bench-fleet-%d-%d", tmp, n, m)

local function psql(sql)
  local p = assert(io.popen(string.format("psql -X -q -h %s -U postgres -d %s -v ON_ERROR_STOP=1 -Atc %s 2>&1",
    lib.q(host), lib.q(db), lib.q(sql))))
  local out = p:read("a")
  assert(p:close(), "psql failed: " .. out)
  return (out:gsub("%s+$", ""))
end

os.execute("rm -rf " .. lib.q(dir) .. " && mkdir -p " .. lib.q(dir .. "/versions"))
lib.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
for i = 1, m do
  local body
  if i == 1 then
    body = '    op.create_table("items", { { "id", t.integer, primary_key = true }, { "name", t.string(80) } })'
  elseif i % 4 == 0 then
    body = string.format('    op.create_index("ix_items_c%d", "items", { "c%d" })', i - 1, i - 1)
  else
    body = string.format('    op.add_column("items", { "c%d", t.integer })', i)
  end
  lib.write(string.format("%s/versions/%012x.lua", dir, i), string.format([[
local t = require("luamig.types")
return {
  revision = %q,
  down_revision = %s,
  upgrade = function(op)
%s
  end,
  downgrade = function() end,
}
]], string.format("%012x", i), i > 1 and string.format("%q", string.format("%012x", i - 1)) or "nil", body))
end

psql(string.format("DO $$ BEGIN FOR g IN 1..%d LOOP EXECUTE format('CREATE SCHEMA seq_%%s; CREATE SCHEMA fl_%%s', "
  .. "lpad(g::text, 4, '0'), lpad(g::text, 4, '0')); END LOOP; END $$", n))
local seq, targets = {}, {}
for i = 1, n do
  seq[#seq + 1] = string.format("%s --url %s --schema seq_%04d -q upgrade head || exit 1", lib.q(bin), lib.q(url), i)
  targets[#targets + 1] = string.format("schema=fl_%04d", i)
end
lib.write(dir .. "/sequential.sh", "cd " .. lib.q(dir) .. "\n" .. table.concat(seq, "\n") .. "\n")
lib.write(dir .. "/targets.txt", table.concat(targets, "\n") .. "\n")

local clock = lib.now
local t0 = clock()
assert(os.execute("sh " .. lib.q(dir .. "/sequential.sh") .. " >/dev/null 2>&1"), "the sequential loop failed")
local t_seq = clock() - t0
t0 = clock()
assert(os.execute(string.format("cd %s && %s --url %s -q upgrade head --targets targets.txt --parallel 4 >/dev/null 2>&1",
  lib.q(dir), lib.q(bin), lib.q(url))), "the fleet failed")
local t_fleet = clock() - t0
local last = string.format("%012x", m)
local at_head = psql(string.format("SELECT count(*) FROM pg_tables WHERE tablename = 'luamig_version'"))
local behind = psql(string.format("SELECT count(*) FROM pg_namespace n WHERE (nspname LIKE 'seq\\_%%' OR nspname LIKE "
  .. "'fl\\_%%') AND NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = n.nspname AND tablename = 'items')"))
print(string.format("%d schemas x %d migrations (%s version tables, %s schemas without the table; head %s)", n, m,
  at_head, behind, last))
print(string.format("%-44s | %8s | %s", "run", "wall", "per schema"))
print(string.format("%-44s | %7.1fs | %5.1f ms", "sequential: luamig --schema NAME upgrade head", t_seq, t_seq * 1000 / n))
print(string.format("%-44s | %7.1fs | %5.1f ms", "fleet: upgrade head --targets --parallel 4", t_fleet, t_fleet * 1000 / n))
print(string.format("fleet / sequential: %.2fx faster", t_seq / t_fleet))

-- the failure case
local bad = string.format("fx_%04d", (n + 1) // 2)
psql(string.format("DO $$ BEGIN FOR g IN 1..%d LOOP EXECUTE format('CREATE SCHEMA fx_%%s', lpad(g::text, 4, '0')); "
  .. "END LOOP; END $$; CREATE TABLE %s.ix_items_c3 (x int)", n, bad))
local fx = {}
for i = 1, n do fx[i] = string.format("schema=fx_%04d", i) end
lib.write(dir .. "/fx.txt", table.concat(fx, "\n") .. "\n")
local function fleet_json()
  local p = assert(io.popen(string.format("cd %s && %s --url %s --json upgrade head --targets fx.txt --parallel 4 "
    .. "2>/dev/null", lib.q(dir), lib.q(bin), lib.q(url))))
  local failed, summary = {}, nil
  for line in p:lines() do
    if line:find('"status":"failed"', 1, true) then failed[#failed + 1] = line end
    summary = line:match('^{"summary":(.*)}$') or summary
  end
  local _, _, code = p:close()
  return code, failed, summary
end
local code, failed, summary = fleet_json()
local parts = {}
for i = 1, n do parts[i] = string.format("SELECT version_num FROM fx_%04d.luamig_version", i) end
local at_head_fx = psql("SELECT count(*) FROM (" .. table.concat(parts, " UNION ALL ") .. ") v WHERE version_num = '"
  .. last .. "'")
print(string.format("failure case: exit %s, %d failed: %s", code, #failed, failed[1] or "-"))
print(string.format("  %s; %s of %d schemas at head; %s is at %s", summary, at_head_fx, n, bad,
  psql("SELECT version_num FROM " .. bad .. ".luamig_version")))
psql("DROP TABLE " .. bad .. ".ix_items_c3")
t0 = clock()
code, failed, summary = fleet_json()
print(string.format("  after the fix, the rerun: exit %s, %d failed, %s (%.2f s)", code, #failed, summary, clock() - t0))
os.execute("rm -rf " .. lib.q(dir))
