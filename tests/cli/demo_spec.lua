-- The bundled versions/ (the kit tables through the kit helpers) applied with the built-in defaults.
local S = require("support")

describe("#cli demo history", function()
  local dir, db

  setup(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
    S.copy_versions(S.root .. "/versions", dir .. "/versions")
  end)
  teardown(function() S.rmrf(dir) end)

  it("upgrade head creates the kit tables with the columns of SPEC 9 and prints the head", function()
    local r = S.run("upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.same({ "artifacts", "config_artifacts", "configs", "luamig_history", "luamig_version", "tasks" }, S.tables(db))
    local entity = { "id VARCHAR(26) 1 - 1", "created_at DATETIME 1 CURRENT_TIMESTAMP 0", "updated_at DATETIME 1 CURRENT_TIMESTAMP 0",
      "tags JSON 1 '[]' 0" }
    local function with_entity(cols)
      for _, c in ipairs(entity) do cols[#cols + 1] = c end
      return cols
    end
    assert.same(with_entity({ "name VARCHAR 1 - 0", "data JSON 1 - 0" }), S.columns(db, "configs"))
    assert.same(with_entity({ "parent_id VARCHAR(26) 0 - 0", "data BLOB 1 - 0", "level INTEGER 1 - 0" }), S.columns(db, "artifacts"))
    assert.same({ "config_id VARCHAR(26) 1 - 1", "artifact_id VARCHAR(26) 1 - 2" }, S.columns(db, "config_artifacts"))
    assert.same(with_entity({ "command TEXT 1 - 0", "task_type TEXT 1 'shell' 0", "parameters JSON 0 - 0", "enabled BOOLEAN 1 1 0" }),
      S.columns(db, "tasks"))
    assert.same({ "ix_configs_name" }, S.indexes(db, "configs"))
    assert.same({ "ix_artifacts_level", "ix_artifacts_parent_id" }, S.indexes(db, "artifacts"))
    assert.equal("artifacts|id|parent_id|SET NULL",
      S.sql(db, "SELECT \"table\", \"to\", \"from\", on_delete FROM pragma_foreign_key_list('artifacts')"))
    assert.equal("artifacts|artifact_id|CASCADE\nconfigs|config_id|CASCADE",
      S.sql(db, "SELECT \"table\", \"from\", on_delete FROM pragma_foreign_key_list('config_artifacts') ORDER BY \"table\""))
    assert.matches("CONSTRAINT uq_artifact_id UNIQUE %(artifact_id%)", S.sql(db, "SELECT sql FROM sqlite_master WHERE name = 'config_artifacts'"))
    assert.equal("7c2a0f93e1b4", S.versions(db))
    assert.same({ "7c2a0f93e1b4 (head)" }, S.run("current", { cwd = dir }).lines)
  end)

  it("the kit's foreign keys and defaults work on real rows", function()
    S.sql(db, "INSERT INTO configs (id, name, data) VALUES ('C1', 'cfg', '{}');"
      .. "INSERT INTO artifacts (id, data, level) VALUES ('A1', x'00', 0);"
      .. "INSERT INTO artifacts (id, parent_id, data, level) VALUES ('A2', 'A1', x'01', 1);"
      .. "INSERT INTO config_artifacts (config_id, artifact_id) VALUES ('C1', 'A2');"
      .. "INSERT INTO tasks (id, command) VALUES ('T1', 'echo hi');")
    assert.equal("shell|1|[]", S.sql(db, "SELECT task_type, enabled, tags FROM tasks"))
    S.sql(db, "PRAGMA foreign_keys = ON; DELETE FROM artifacts WHERE id = 'A1'")
    assert.equal("A2|", S.sql(db, "SELECT id, coalesce(parent_id, '') FROM artifacts"))
    S.sql(db, "PRAGMA foreign_keys = ON; DELETE FROM configs")
    assert.equal("0", S.sql(db, "SELECT count(*) FROM config_artifacts"))
  end)

  it("downgrade base drops every kit table in reverse order", function()
    local r = S.run("downgrade base", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.same({ "luamig_history", "luamig_version" }, S.tables(db))
  end)
end)
