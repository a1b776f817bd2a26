-- A read-only standby (scripts/test starts a streaming standby of the test server): upgrade refuses it before any
-- lock, read-only commands work on it, and a multi-host URL that lists it first with
-- target_session_attrs=read-write migrates the primary.
local S = require("support")

local function standby_psql(db, sql)
  local u = S.pg_url_via("LUAMIG_TEST_PG_STANDBY_URL", db)
  local host, port = u:match("[?&]host=([^&]+)"), u:match("[?&]port=([^&]+)")
  local code, out = S.sh(string.format("psql -X -q -h %s -p %s -U postgres -d %s -Atc %s", S.q(host), S.q(port),
    S.q(db), S.q(sql)))
  return code, (out:gsub("%s+$", ""))
end

-- caught_up(): waits until the standby has replayed all the primary has written so far
local function caught_up()
  S.pg_caught_up(function(sql) return S.psql("postgres", sql) end, function(sql)
    local code, out = standby_psql("postgres", sql)
    return code == 0 and out or nil
  end)
end

describe("#postgres a read-only standby", function()
  local dir, db, url
  before_each(function()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
    S.counted(dir, 2)
    db, url = S.pg_database()
  end)
  after_each(function()
    S.pg_drop(db)
    S.rmrf(dir)
  end)

  it("upgrade exits 1 with the standby line and takes no lock; current works on it", function()
    local standby = S.pg_url_via("LUAMIG_TEST_PG_STANDBY_URL", db)
    caught_up() -- (the standby has the database once it replayed its creation)
    local r = S.run("-v --url " .. S.q(standby) .. " upgrade head", { cwd = dir })
    assert.equal(1, r.code, r.err)
    assert.equal("luamig: " .. standby .. ": the server is a read-only standby (in recovery); point luamig at the "
      .. "primary, e.g. with target_session_attrs=read-write", r.first)
    -- refused before the lock: -v never said which lock it chose, and the primary has no version table
    assert.falsy(r.err:find("lock:", 1, true), r.err)
    assert.equal("0", S.psql(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'luamig_version'"))
    -- after the primary is migrated, the standby answers current
    assert.equal(0, S.run("--url " .. S.q(url) .. " upgrade head", { cwd = dir }).code)
    caught_up()
    local c = S.run("--url " .. S.q(standby) .. " current", { cwd = dir })
    assert.equal(0, c.code, c.err)
    assert.truthy(c.out:find("c00200000002 (head)", 1, true), c.out)
    local h = S.run("--url " .. S.q(standby) .. " history -i", { cwd = dir })
    assert.equal(0, h.code, h.err)
  end)

  it("a multi-host URL listing the standby first with target_session_attrs=read-write migrates the primary", function()
    local standby = S.pg_url_via("LUAMIG_TEST_PG_STANDBY_URL", db)
    local primary = os.getenv("LUAMIG_TEST_PG_URL")
    local sock = standby:match("[?&]host=([^&]+)")
    local sport = standby:match("[?&]port=([^&]+)")
    local psock = primary:match("[?&]host=([^&]+)")
    caught_up()
    local both = string.format("postgresql:///%s?host=%s,%s&port=%s,5432&user=postgres&target_session_attrs=read-write",
      db, sock, psock, sport)
    local r = S.run("--url " .. S.q(both) .. " upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("c00200000002", S.pg_versions(db))
    -- the authority form with several hosts parses and masks its password
    local masked = S.run("--url " .. S.q("postgresql://u:secret@h1:5432,h2:5433/d?connect_timeout=1") .. " current",
      { cwd = dir })
    assert.equal(1, masked.code)
    assert.truthy(masked.first:find("postgresql://u:***@h1:5432,h2:5433/d", 1, true), masked.first)
    assert.falsy(masked.err:find("secret", 1, true), masked.err)
  end)
end)
