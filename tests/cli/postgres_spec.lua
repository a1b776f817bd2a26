-- PostgreSQL through the built binary, against the throw-away server of scripts/test: the kit history, atomic
-- failure in both transaction modes, concurrent runners, the lock timeout, and passwords kept out of output.
local S = require("support")

local function tree(from)
  local dir = S.tmpdir()
  S.copy_versions(from, dir .. "/versions")
  return dir
end

describe("#postgres kit history", function()
  it("applies the demo versions: kit tables with PostgreSQL types, then back to base", function()
    local db, url = S.pg_database()
    local dir = tree(S.root .. "/versions")
    local r = S.run(S.q("--url=" .. url) .. " upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("7c2a0f93e1b4", S.pg_versions(db))
    assert.equal("artifacts,config_artifacts,configs,luamig_history,luamig_version,tasks",
      (S.psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):gsub("\n", ",")))
    assert.equal("command text NO\ntask_type text NO 'shell'::text\nparameters jsonb YES\nenabled boolean NO true\n"
      .. "id character varying NO\ncreated_at timestamp without time zone NO CURRENT_TIMESTAMP\n"
      .. "updated_at timestamp without time zone NO CURRENT_TIMESTAMP\ntags jsonb NO '[]'::jsonb",
      S.psql(db, "SELECT column_name || ' ' || data_type || ' ' || is_nullable || coalesce(' ' || column_default, '') "
        .. "FROM information_schema.columns WHERE table_name = 'tasks' ORDER BY ordinal_position"))
    assert.equal("artifacts|fk_artifacts_parent_id_artifacts|FOREIGN KEY (parent_id) REFERENCES artifacts(id) ON DELETE SET NULL",
      S.psql(db, "SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' "
        .. "AND conrelid = 'artifacts'::regclass"))
    assert.equal("bytea", S.psql(db, "SELECT data_type FROM information_schema.columns WHERE table_name = 'artifacts' AND column_name = 'data'"))
    r = S.run(S.q("--url=" .. url) .. " downgrade base", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("luamig_history,luamig_version",
      (S.psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):gsub("\n", ",")))
    S.rmrf(dir)
    S.pg_drop(db)
  end)
end)

describe("#postgres atomic failure", function()
  local db, url, dir
  before_each(function()
    db, url = S.pg_database()
    dir = S.tmpdir()
    S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "base", up = [[
  op.create_table("things", { { "id", t.integer, primary_key = true }, { "label", t.text } })
  op.bulk_insert("things", { { id = 1, label = "one" } })]], down_body = [[  op.drop_table("things")]] })
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "good", up = [[
  op.add_column("things", { "n", t.integer, server_default = 0 })]], down_body = [[  op.drop_column("things", "n")]] })
    S.migration(dir .. "/versions", { rev = "cccc00000003", down = "bbbb00000002", msg = "breaks at 3 of 4", up = [[
  op.create_table("more", { { "id", t.integer } })
  op.alter_column("things", "label", { nullable = false, type = t.string(20) })
  op.execute("INSERT INTO things (id, label) VALUES (1, 'duplicate')")
  op.create_index("ix_more_id", "more", { "id" })]] })
  end)
  after_each(function()
    S.rmrf(dir)
    S.pg_drop(db)
  end)
  local function run(args) return S.run(S.q("--url=" .. url) .. " " .. args, { cwd = dir }) end

  it("a migration failing at statement 3 of 4 leaves schema and version rows as before it", function()
    assert.equal(0, run("upgrade bbbb00000002").code)
    local before = S.pg_schema(db)
    local r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal('luamig: upgrade bbbb00000002 -> cccc00000003 failed at versions/cccc00000003_breaks_at_3_of_4.lua:10: '
      .. 'duplicate key value violates unique constraint "pk_things"; statement: INSERT INTO things (id, label) VALUES (1, \'duplicate\')',
      r.errline)
    assert.equal(before, S.pg_schema(db))
    assert.equal("bbbb00000002", S.pg_versions(db))
    assert.equal("1|one|0", S.psql(db, "SELECT id, label, n FROM things"))
  end)

  it("per migration, the migrations before the failing one stay applied", function()
    local r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal("bbbb00000002", S.pg_versions(db))
    assert.equal("2", S.psql(db, "SELECT count(*) FROM luamig_history"))
  end)

  it("--single-transaction rolls back the whole run", function()
    local r = run("upgrade head --single-transaction")
    assert.equal(1, r.code)
    -- nothing at all: not even the version table the run created first
    assert.equal("0", S.psql(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
  end)
end)

describe("#postgres concurrency and locking", function()
  local function chain(dir, n)
    for i = 1, n do
      S.migration(dir .. "/versions", { rev = string.format("r%03d", i), down = i > 1 and string.format("r%03d", i - 1) or nil,
        msg = "step " .. i, up = (i == 1 and '  op.create_table("runs", { { "rev", t.text }, { "pid", t.integer } })\n' or "")
          .. string.format('  op.create_table("t_%d", { { "id", t.integer } })\n  op.execute("INSERT INTO runs (rev) VALUES (?)", { "r%03d" })', i, i) })
    end
  end

  local function race(url, dir, procs)
    local cmd = {}
    for p = 1, procs do
      cmd[#cmd + 1] = string.format("(cd %s && env -u DATABASE_URL %s %s -q upgrade head > %s/out.%d 2>&1; echo $? > %s/rc.%d) &",
        S.q(dir), S.q(S.bin), S.q("--url=" .. url), S.q(dir), p, S.q(dir), p)
    end
    cmd[#cmd + 1] = "wait"
    assert(os.execute(S.clean(table.concat(cmd, " "))))
    local codes = {}
    for p = 1, procs do codes[#codes + 1] = (S.read(dir .. "/rc." .. p) or "?"):gsub("%s", "") end
    return table.concat(codes, ",")
  end

  it("8 runners at once on PostgreSQL: all exit 0 and each of 30 migrations runs once (3 rounds)", function()
    local dir = S.tmpdir()
    chain(dir, 30)
    for _ = 1, 3 do
      local db, url = S.pg_database()
      assert.equal("0,0,0,0,0,0,0,0", race(url, dir, 8))
      assert.equal("30|30", S.psql(db, "SELECT count(*), count(DISTINCT rev) FROM runs"))
      assert.equal("r030", S.pg_versions(db))
      S.pg_drop(db)
    end
    S.rmrf(dir)
  end)

  it("8 runners at once on SQLite: the same", function()
    local dir = S.tmpdir()
    chain(dir, 30)
    for round = 1, 3 do
      local url = "sqlite:///" .. dir .. "/race" .. round .. ".db"
      assert.equal("0,0,0,0,0,0,0,0", race(url, dir, 8))
      assert.equal("30|30", S.sql(dir .. "/race" .. round .. ".db", "SELECT count(*), count(DISTINCT rev) FROM runs"))
    end
    S.rmrf(dir)
  end)

  it("a lock held past lock_timeout: exit 1 naming the holder, nothing applied", function()
    local db, url = S.pg_database()
    local dir = S.tmpdir()
    chain(dir, 2)
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nlock_timeout = 1\n")
    local host, user = os.getenv("LUAMIG_TEST_PG_URL"):match("host=([^&]+)"), "postgres"
    os.execute(S.clean(string.format("psql -X -q -h %s -U %s -d %s -c %s >/dev/null 2>&1 &", S.q(host), user, db,
      S.q("SELECT pg_advisory_lock(hashtextextended(current_database() || '.' || current_schema() || '.luamig_version', 0)); SELECT pg_sleep(4)"))))
    os.execute("sleep 0.7")
    local r = S.run(S.q("--url=" .. url) .. " upgrade head", { cwd = dir })
    assert.equal(1, r.code)
    assert.matches("^waiting for the migration lock on postgresql:///" .. db .. "%?host=.* held by another luamig run %(server pid %d+%)", r.first)
    assert.matches("^luamig: could not get the migration lock on postgresql:///" .. db .. ".* within 1 s: another luamig run %(server pid %d+%) is migrating it$", r.errline)
    assert.equal("0", S.psql(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    os.execute("sleep 3.5")
    S.rmrf(dir)
    S.pg_drop(db)
  end)
end)

describe("#postgres passwords", function()
  it("never appear in any output, errors included", function()
    local dir = tree(S.root .. "/versions")
    local secret = "s3cr3t-pw"
    for _, args in ipairs({
      "--url postgresql://app:" .. secret .. "@127.0.0.1:1/prod upgrade head",
      "--url postgresql://app:" .. secret .. "@127.0.0.1:1/prod current",
      "--url postgresql://app:" .. secret .. "@127.0.0.1:1/prod --json current",
      "--url postgresql://app:" .. secret .. "@127.0.0.1:99999/prod current",
      "--url postgresql://app:" .. secret .. "@127.0.0.1:1/prod?password=" .. secret .. " current",
      "-v --url postgresql://app:" .. secret .. "@127.0.0.1:1/prod history -i",
    }) do
      local r = S.run(args, { cwd = dir })
      assert.equal(1, r.code, args)
      assert.is_nil((r.out .. r.err):find(secret, 1, true), args .. ": " .. r.out .. r.err)
      assert.matches("^luamig: .*app:%*%*%*@127%.0%.0%.1", r.first)
    end
    local r = S.run("upgrade head", { cwd = dir, env = { DATABASE_URL = "postgresql://app:" .. secret .. "@127.0.0.1:1/prod" } })
    assert.equal(1, r.code)
    assert.is_nil((r.out .. r.err):find(secret, 1, true))
    S.rmrf(dir)
  end)
end)

describe("#postgres op api", function()
  it("every op of SPEC 4 applies, and its downgrade brings back exactly the schema before it", function()
    local db, url = S.pg_database()
    local dir = S.tmpdir()
    S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "base", up = [[
  op.create_table("people", {
    { "id", t.integer, primary_key = true },
    { "name", t.string(40), nullable = false },
    { "code", t.string(5) },
    { "meta", t.json },
    { "born", t.datetime },
    { "photo", t.blob },
  })
  op.create_table("teams", { { "id", t.integer, primary_key = true }, { "title", t.text } })]],
      down_body = [[  op.drop_table("teams")
  op.drop_table("people")]] })
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "every op", up = [[
  op.rename_table("teams", "squads")
  op.add_column("people", { "squad_id", t.integer })
  op.add_column("people", { "score", t.numeric(8, 2), server_default = 0, nullable = false })
  op.alter_column("people", "code", { type = t.string(12), nullable = false, server_default = "x", existing_type = t.string(5) })
  op.alter_column("people", "name", { new_column_name = "full_name" })
  op.alter_column("people", "born", { type = t.date, using = "born::date" })
  op.create_index("ix_people_code", "people", { "code" }, { unique = true })
  op.create_index("ix_people_meta", "people", { "squad_id" }, { where = op.text("squad_id IS NOT NULL") })
  op.create_unique_constraint("uq_people_full_name", "people", { "full_name" })
  op.create_foreign_key("fk_people_squad", "people", "squads", { "squad_id" }, { "id" }, { ondelete = "SET NULL" })
  op.create_check_constraint("ck_people_score", "people", "score >= 0")
  op.drop_column("people", "photo")
  op.bulk_insert("squads", { { id = 1, title = "a" }, { id = 2, title = "b" } })
  op.execute("INSERT INTO people (full_name, code, meta, squad_id) VALUES (:n, ?, ?, 1)", { "p1", '{"k": 1}', n = "Ada" })
  local rows = op.get_bind():query("SELECT full_name, code FROM people WHERE squad_id = ?", { 1 })
  assert(#rows == 1 and rows[1].full_name == "Ada" and rows[1].code == "p1")]], down_body = [[
  op.execute("DELETE FROM people")
  op.execute("DELETE FROM squads")
  op.add_column("people", { "photo", t.blob })
  op.drop_constraint("ck_people_score", "people", { type = "check" })
  op.drop_constraint("fk_people_squad", "people", { type = "foreignkey" })
  op.drop_constraint("uq_people_full_name", "people", { type = "unique" })
  op.drop_index("ix_people_meta", "people")
  op.drop_index("ix_people_code", "people")
  op.alter_column("people", "born", { type = t.datetime })
  op.alter_column("people", "full_name", { new_column_name = "name" })
  op.alter_column("people", "code", { type = t.string(5), nullable = true, server_default = op.NULL })
  op.drop_column("people", "score")
  op.drop_column("people", "squad_id")
  op.rename_table("squads", "teams")]] })
    local function run(args) return S.run(S.q("--url=" .. url) .. " " .. args, { cwd = dir }) end
    local r = run("upgrade aaaa00000001")
    assert.equal(0, r.code, r.err)
    local before = S.pg_schema(db)
    r = run("upgrade head")
    assert.equal(0, r.code, r.err)
    local after = S.pg_schema(db)
    assert.matches("people%.score numeric NO 0", after)
    assert.matches("people%.code character varying NO 'x'::character varying", after)
    assert.matches("people%.born date YES", after)
    assert.matches("CREATE UNIQUE INDEX ix_people_code ON public%.people USING btree %(code%)", after)
    assert.matches("WHERE %(squad_id IS NOT NULL%)", after)
    assert.matches("people fk_people_squad FOREIGN KEY %(squad_id%) REFERENCES squads%(id%) ON DELETE SET NULL", after)
    assert.matches("people ck_people_score CHECK %(%(score >= %(0%)::numeric%)%)", after)
    assert.is_nil(after:find("people.photo", 1, true))
    assert.equal("Ada|a", S.psql(db, "SELECT p.full_name, s.title FROM people p JOIN squads s ON s.id = p.squad_id"))
    r = run("downgrade -1")
    assert.equal(0, r.code, r.err)
    assert.equal(before, S.pg_schema(db))
    S.rmrf(dir)
    S.pg_drop(db)
  end)
end)
