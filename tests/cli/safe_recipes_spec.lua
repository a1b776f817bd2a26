-- The op API's safe recipes for big PostgreSQL tables: constraints added NOT VALID and validated later
-- (op.validate_constraint), and unique constraints / primary keys made from an index built before (using_index).
-- On SQLite the same migrations run: the constraint is added by a table rebuild that checks the rows, with a warning
-- line saying so, and validate_constraint does nothing.
local S = require("support")

local BASE = [[  op.create_table("p", { { "id", t.integer, primary_key = true } })
  op.create_table("c", { { "id", t.integer, nullable = false }, { "p_id", t.integer }, { "n", t.integer } })
  op.bulk_insert("p", { { id = 1 } })
  op.bulk_insert("c", { { id = 1, p_id = 1, n = 5 }, { id = 2, p_id = 1, n = -1 } })]]

for _, T in ipairs(S.targets()) do
  local pg = T.name == "postgres"
  describe("#" .. T.name .. " safe recipes", function()
    local dir, url, db
    local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
    -- validated(kind) -> "name|t" lines of table c's constraints (of contype kind, all without one), by name
    local function validated(kind)
      return T.query(db, "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'c'::regclass"
        .. (kind and (" AND contype = '" .. kind .. "'") or "") .. " ORDER BY 1")
    end
    before_each(function()
      dir = S.tmpdir()
      S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nfile_template = %%(rev)s\n")
    end)
    after_each(function()
      S.rmrf(dir)
      T.drop(db)
    end)

    it("not_valid adds a CHECK and a foreign key without checking the rows; validate_constraint checks them later", function()
      S.chain(dir, {
        BASE,
        [[  op.create_check_constraint("ck_c_n", "c", "n > 0", { not_valid = true })
  op.create_foreign_key("fk_c_p", "c", "p", { "p_id" }, { "id" }, { not_valid = true })]],
        [[  op.execute("UPDATE c SET n = 1 WHERE n <= 0")
  op.validate_constraint("ck_c_n", "c")
  op.validate_constraint("fk_c_p", "c")]],
      })
      url, db = T.fresh(dir)
      assert.equal(0, run("upgrade +1").code)
      local r = run("upgrade +1")
      if pg then
        assert.equal(0, r.code, r.err)
        -- the row with n = -1 is there under a CHECK that was not validated
        assert.equal("ck_c_n|f\nfk_c_p|f", validated())
        assert.equal(0, run("upgrade head").code)
        assert.equal("ck_c_n|t\nfk_c_p|t", validated())
      else
        -- the rebuild checks every row: the CHECK fails on n = -1, and the step rolls back whole
        assert.equal(1, r.code)
        assert.truthy(r.err:find("not_valid is PostgreSQL's; SQLite adds the constraint with a table rebuild", 1, true), r.err)
        assert.truthy(r.err:find("CHECK constraint failed", 1, true), r.err)
        assert.equal("aaab00000001", T.versions(db))
      end
    end)

    it("on rows that satisfy it, a not_valid constraint and its validation run on SQLite too", function()
      S.chain(dir, {
        BASE .. "\n  op.execute(\"UPDATE c SET n = 1 WHERE n <= 0\")",
        [[  op.create_check_constraint("ck_c_n", "c", "n > 0", { not_valid = true })
  op.validate_constraint("ck_c_n", "c")]],
      })
      url, db = T.fresh(dir)
      local r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      if pg then
        assert.equal("ck_c_n|t", validated("c"))
      else
        assert.truthy(r.err:find("warning: create_check_constraint('c', 'ck_c_n'): not_valid is PostgreSQL's", 1, true), r.err)
        assert.truthy(T.query(db, "SELECT sql FROM sqlite_master WHERE name = 'c'"):find("ck_c_n", 1, true))
      end
    end)

    it("using_index makes the unique constraint and the primary key of indexes built before", function()
      S.chain(dir, {
        BASE,
        [[  op.create_index("ix_c_id", "c", { "id" }, { unique = true })
  op.create_index("ix_c_p_n", "c", { "p_id", "n" }, { unique = true })]],
        [[  op.create_primary_key("pk_c", "c", { "id" }, { using_index = "ix_c_id" })
  op.create_unique_constraint("uq_c_p_n", "c", { "p_id", "n" }, { using_index = "ix_c_p_n" })]],
      })
      url, db = T.fresh(dir)
      local r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      if pg then
        -- the constraints own the indexes (PostgreSQL renames them): no second index was built
        assert.equal("pk_c|p|pk_c\nuq_c_p_n|u|uq_c_p_n", T.query(db, "SELECT conname, contype, conindid::regclass "
          .. "FROM pg_constraint WHERE conrelid = 'c'::regclass ORDER BY 1"))
        assert.equal("pk_c\nuq_c_p_n", T.query(db, "SELECT indexrelid::regclass FROM pg_index "
          .. "WHERE indrelid = 'c'::regclass ORDER BY 1"))
      else
        assert.truthy(r.err:find("using_index is PostgreSQL's", 1, true), r.err)
        local sql = T.query(db, "SELECT sql FROM sqlite_master WHERE name = 'c'")
        assert.truthy(sql:find("pk_c", 1, true) and sql:find("uq_c_p_n", 1, true), sql)
      end
    end)

    it("writes NOT VALID, VALIDATE CONSTRAINT and USING INDEX with --sql (SQLite: refused, a rebuild reads the table)", function()
      S.chain(dir, {
        BASE,
        [[  op.create_check_constraint("ck_c_n", "c", "n > 0", { not_valid = true })
  op.validate_constraint("ck_c_n", "c")
  op.create_unique_constraint("uq_c_id", "c", { "id" }, { using_index = "ix_c_id" })]],
      })
      url, db = T.fresh(dir)
      local r = run("upgrade head --sql")
      if not pg then
        assert.equal(1, r.code)
        assert.truthy(r.errline:find("SQLite needs a table rebuild for this, which reads the live table", 1, true), r.errline)
        return
      end
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("ALTER TABLE c ADD CONSTRAINT ck_c_n CHECK (n > 0) NOT VALID;", 1, true), r.out)
      assert.truthy(r.out:find("ALTER TABLE c VALIDATE CONSTRAINT ck_c_n;", 1, true), r.out)
      assert.truthy(r.out:find("ALTER TABLE c ADD CONSTRAINT uq_c_id UNIQUE USING INDEX ix_c_id;", 1, true), r.out)
    end)
  end)
end
