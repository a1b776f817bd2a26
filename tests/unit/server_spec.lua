-- What luamig makes of the server it connects to: the engine from version() and the installed extensions, the
-- lock mode auto picks, and the line that refuses a standby. Canned version() strings: no CockroachDB, YugabyteDB or
-- Citus server is available to the suite.
local server = require("luamig.dialect.postgresql.server")

describe("#unit the PostgreSQL server probe", function()
  it("tells the engines apart by version() and extensions", function()
    assert.equal("postgresql", server.detect("PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu, "
      .. "compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit", "plpgsql"))
    assert.equal("cockroachdb", server.detect("CockroachDB CCL v24.1.2 (x86_64-pc-linux-gnu, built 2024/07/01 "
      .. "12:00:00, go1.22.3)", nil))
    assert.equal("yugabytedb", server.detect("PostgreSQL 11.2-YB-2.20.1.0-b0 on x86_64-pc-linux-gnu, compiled by "
      .. "clang version 16.0.6, 64-bit", "plpgsql"))
    assert.equal("citus", server.detect("PostgreSQL 16.2 on x86_64-pc-linux-gnu", "plpgsql,citus_columnar,citus"))
    assert.equal("postgresql", server.detect("PostgreSQL 16.2 on x86_64-pc-linux-gnu", "plpgsql,citus_columnar"))
  end)

  it("auto: session on a direct connection, the lease behind a pooler or on an engine without advisory locks", function()
    local direct = { engine = "postgresql" }
    assert.same({ "session", "a direct connection" }, { server.lock_mode({ lock = "auto" }, direct) })
    local pooled = { engine = "postgresql", pooled = true, pooled_why = "the connection's backend pid 7 is not the server's 9" }
    assert.same({ "lease", "a transaction pooler: the connection's backend pid 7 is not the server's 9" },
      { server.lock_mode({ lock = "auto" }, pooled) })
    assert.same({ "lease", "CockroachDB has no advisory locks luamig can trust" },
      { server.lock_mode({}, { engine = "cockroachdb" }) })
    assert.same({ "lease", "YugabyteDB has no advisory locks luamig can trust" },
      { server.lock_mode({}, { engine = "yugabytedb" }) })
    assert.same({ "session", "a direct connection" }, { server.lock_mode({}, { engine = "citus" }) })
    assert.same({ "transaction", "lock = transaction" }, { server.lock_mode({ lock = "transaction" }, pooled) })
    assert.is_false(server.ENGINES.cockroachdb.transactional_ddl)
    assert.is_false(server.ENGINES.yugabytedb.transactional_ddl)
    assert.is_true(server.ENGINES.citus.transactional_ddl)
  end)

  it("refuses a standby and a read-only primary, with the way out", function()
    assert.equal("postgresql://u:***@h/db: the server is a read-only standby (in recovery); point luamig at the "
      .. "primary, e.g. with target_session_attrs=read-write",
      server.read_only_message("postgresql://u:***@h/db", { recovery = true, read_only = true }))
    assert.truthy(server.read_only_message("x", { read_only = true }):find("default_transaction_read_only is on", 1, true))
    assert.is_nil(server.read_only_message("x", {}))
  end)
end)
