-- The raw-SQL grammar of lint (luamig.sql_classify): each DDL form the rules are about, with quoted, qualified and
-- lower-case spellings, and statements it must leave unclassified.
local classify = require("luamig.sql_classify").classify

-- summary(actions) -> "kind table k=v ..." per action (fields sorted), joined by " | "
local function summary(actions)
  if not actions then return nil end
  local out = {}
  for _, a in ipairs(actions) do
    local keys = {}
    for k in pairs(a) do if k ~= "kind" and k ~= "table" then keys[#keys + 1] = k end end
    table.sort(keys)
    local parts = { a.kind, tostring(a.table) }
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(a[k]) end
    out[#out + 1] = table.concat(parts, " ")
  end
  return table.concat(out, " | ")
end

local CASES = {
  { "ALTER TABLE users ADD COLUMN age integer NOT NULL", "add_column users column=age not_null=true type=integer" },
  { 'alter table public."Users" add column x int default random() not null, add y text',
    "add_column Users column=x default=random() not_null=true type=int | add_column Users column=y not_null=false type=text" },
  { "ALTER TABLE t ADD COLUMN u uuid REFERENCES o (id)", "add_column t column=u not_null=false references=o type=uuid" },
  { "ALTER TABLE ONLY t ALTER COLUMN c TYPE varchar(200) USING c::varchar", "alter_type t column=c type=varchar(200)" },
  { "ALTER TABLE t ALTER COLUMN c SET DATA TYPE numeric(12, 2)", "alter_type t column=c type=numeric(12, 2)" },
  { "ALTER TABLE t ALTER c SET NOT NULL", "set_not_null t column=c" },
  { "ALTER TABLE t ALTER COLUMN c DROP NOT NULL", "drop_not_null t column=c" },
  { "ALTER TABLE t ALTER COLUMN c SET DEFAULT 5", "set_default t column=c default=5" },
  { "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES o(id) NOT VALID",
    "add_constraint t ctype=foreign_key name=fk not_valid=true reftable=o" },
  { "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES s.o (id) ON DELETE CASCADE",
    "add_constraint t ctype=foreign_key name=fk not_valid=false reftable=o" },
  { "ALTER TABLE t ADD CONSTRAINT ck CHECK (c IS NOT NULL) NOT VALID",
    "add_constraint t ctype=check expr=(c IS NOT NULL) name=ck not_valid=true" },
  { "ALTER TABLE t ADD CHECK (n > 0)", "add_constraint t ctype=check expr=(n > 0) not_valid=false" },
  { "ALTER TABLE t ADD CONSTRAINT uq UNIQUE USING INDEX ix", "add_constraint t ctype=unique name=uq using_index=ix" },
  { "ALTER TABLE t ADD PRIMARY KEY (id)", "add_constraint t ctype=primary_key" },
  { "ALTER TABLE t VALIDATE CONSTRAINT ck", "validate_constraint t name=ck" },
  { "ALTER TABLE t RENAME COLUMN a TO b", "rename_column t column=a to=b" },
  { "ALTER TABLE t RENAME TO u", "rename_table t to=u" },
  { "ALTER TABLE IF EXISTS t DROP COLUMN IF EXISTS a CASCADE", "drop_column t column=a" },
  { "ALTER TABLE t DROP CONSTRAINT ck", "drop_constraint t name=ck" },
  { "ALTER TABLE t OWNER TO bob", "alter_other t" },
  { "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix_a ON t (a)", "create_index t concurrently=true name=ix_a unique=true" },
  { "create index on t(a)", "create_index t" },
  { "DROP INDEX CONCURRENTLY ix_a", "drop_index nil concurrently=true name=ix_a" },
  { "DROP TABLE IF EXISTS a, b CASCADE", "drop_table a | drop_table b" },
  { "CREATE UNLOGGED TABLE IF NOT EXISTS foo (id int)", "create_table foo" },
  { "VACUUM FULL t", "vacuum_full t" },
  { "VACUUM (FULL, ANALYZE) t", "vacuum_full t" },
  { "VACUUM ANALYZE t", "vacuum t" },
  { "CLUSTER t USING ix", "cluster t" },
  { "REINDEX TABLE CONCURRENTLY t", "reindex t concurrently=true name=t target=table" },
  { "REINDEX INDEX ix", "reindex nil concurrently=false name=ix target=index" },
  { "LOCK TABLE a, b IN SHARE ROW EXCLUSIVE MODE", "lock a mode=SHARE ROW EXCLUSIVE | lock b mode=SHARE ROW EXCLUSIVE" },
  { "LOCK a", "lock a mode=ACCESS EXCLUSIVE" },
  { "UPDATE t SET a = 1 WHERE b", "dml t verb=update" },
  { "INSERT INTO t (a) VALUES (1)", "dml t verb=insert" },
  { "delete from only t", "dml t verb=delete" },
  { "-- a comment\nALTER /* here */ TABLE t ADD COLUMN c int", "add_column t column=c not_null=false type=int" },
}

local UNCLASSIFIED = { "CREATE EXTENSION foo", "COMMENT ON TABLE t IS 'x'", "SELECT 1", "LOCK TABLE a IN NO SUCH MODE",
  "ALTER TABLE t ADD CONSTRAINT x CHECK " .. string.rep("(", 5000) .. string.rep(")", 5000), "" }

describe("#unit sql_classify", function()
  it("classifies the DDL forms of the lint rules", function()
    for _, c in ipairs(CASES) do assert.equal(c[2], summary(classify(c[1])), c[1]) end
  end)
  it("leaves what it does not know unclassified (nil), also nesting deeper than lpeg goes", function()
    for _, sql in ipairs(UNCLASSIFIED) do assert.is_nil(classify(sql), sql:sub(1, 60)) end
  end)
end)
