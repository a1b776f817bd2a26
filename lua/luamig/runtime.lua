-- The migration runner: resolves a target, plans the steps between the database's heads and it, and applies each
-- step in a transaction that holds the migration's statements, the version-table change and the luamig_history
-- row, so a step commits whole or not at all. On SQLite, BEGIN IMMEDIATE plus re-reading the heads inside the
-- transaction makes concurrent runners apply each migration exactly once.
--
-- Offline (--sql) the same steps are written out as SQL instead: no connection, the heads kept in memory, bound
-- values written as literals, BEGIN/COMMIT around each migration (or the whole run).
local core = require("luamig.core")
local op_api = require("luamig.op")
local schema = require("luamig.schema")
local sql_text = require("luamig.sql_text")
local target_grammar = require("luamig.target")
local vt = require("luamig.version_table")

local format, concat, ipairs, type, tostring, setmetatable = string.format, table.concat, ipairs, type, tostring, setmetatable
local xpcall, getinfo, traceback, floor, sort = xpcall, debug.getinfo, debug.traceback, math.floor, table.sort
local getmetatable = getmetatable

local SqlErrorMT = { __tostring = function(e) return e.msg end }

local Runner = {}
Runner.__index = Runner

-- new(opts) -> runner
-- opts: conn (driver connection; nil offline), dialect, graph, cfg (settings), progress (function(line)), verbose,
-- emit (offline: function(text) that writes SQL), heads (offline: the heads the database is assumed to be at)
local function new(opts)
  local r = setmetatable({ conn = opts.conn, dialect = opts.dialect, graph = opts.graph, cfg = opts.cfg,
    progress = opts.progress or function() end, verbose = opts.verbose, emit = opts.emit,
    offline_heads = opts.heads or {}, tables_ready = opts.emit ~= nil and opts.heads ~= nil }, Runner)
  local dialect = opts.dialect
  r.literal = dialect and function(v) return dialect:literal(v) end
  return r
end

local function one_line(s, max)
  s = tostring(s):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if max and #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

local function same_set(a, b)
  if #a ~= #b then return false end
  if #a == 1 then return a[1] == b[1] end
  local s = {}
  for _, v in ipairs(a) do s[v] = true end
  for _, v in ipairs(b) do if not s[v] then return false end end
  return true
end

local function sorted_copy(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  sort(out)
  return out
end

local function sql_error(sql, msg, code)
  error(setmetatable({ sql = sql, msg = msg, code = code }, SqlErrorMT))
end

-- exec(sql, params, expect, plain): runs one statement (or writes it, offline); raises a SQL error keeping the
-- statement. expect: the number of rows the statement must change. plain: the SQL is luamig's own, with only ?
-- placeholders and no quotes or comments.
function Runner:exec(sql, params, expect, plain)
  if self.emit then
    if params then
      local text, err
      if plain then
        text = sql_text.inline_plain(sql, params, self.literal)
      else
        text, err = sql_text.inline(sql, params, self.literal)
        if not text then sql_error(sql, err, 0) end
      end
      sql = text
    end
    self.emit(sql)
    self.emit(";\n")
    return 0
  end
  local ok, msg, code, failing = self.conn:exec(sql, params)
  if not ok then sql_error(failing or sql, msg, code) end
  if expect and msg ~= expect then
    sql_error(sql, format("expected to change %d row(s) of the version table, changed %d: another process changed it",
      expect, msg), 0)
  end
  return msg
end

-- Transaction control; nil, message on failure (online), always fine offline.
function Runner:tx(word)
  if self.emit then
    self.emit(word == "BEGIN" and "BEGIN;\n\n" or (word .. ";\n\n"))
    return true
  end
  local sql = word == "BEGIN" and self.dialect.begin_sql or word
  local ok, msg = self.conn:exec(sql)
  if not ok then return nil, msg end
  return true
end

-- heads() -> the version rows of the database (sorted), or nil, message
function Runner:heads()
  if self.emit then return self.offline_heads end
  local rows, err = vt.read(self.conn, self.dialect, self.cfg.version_table)
  if not rows then return nil, format("cannot read the version table %s: %s", self.cfg.version_table, err) end
  return rows
end

-- The `op` executor: compiles an op value and runs (or writes) its statements.
function Runner:run_op(o)
  if o.op == "bulk_insert" then
    if #o.rows == 0 then return end
    local sql, cols = self.dialect:bulk_insert_sql(o)
    if self.emit then
      for _, row in ipairs(o.rows) do self:exec(sql, schema.values_of(row, cols)) end
      return
    end
    local ok, msg, code, row = self.conn:bulk_insert(sql, cols, o.rows)
    if not ok then sql_error(sql, format("%s (row %s)", msg, tostring(row)), code) end
    return
  end
  for _, st in ipairs(self.dialect:compile(o)) do
    if type(st) == "string" then self:exec(st) else self:exec(st.sql, st.params) end
  end
end

-- The connection a migration sees through op.get_bind(): failures raise with the statement attached.
function Runner:bind()
  if self.emit then return nil end
  local runner = self
  return {
    dialect = self.dialect.name,
    query = function(_, sql, params)
      local rows, msg, code = runner.conn:query(sql, params)
      if not rows then sql_error(sql, msg, code) end
      return rows
    end,
    exec = function(_, sql, params) return runner:exec(sql, params) end,
  }
end

local function join_heads(list)
  return #list == 0 and "<base>" or concat(list, ", ")
end

-- The `op` object migrations receive: one per runner, its statements going through this runner.
function Runner:op()
  if not self.op_object then
    self.op_object = op_api.new({
      dialect = self.dialect,
      run = function(o) return self:run_op(o) end,
      bind = self:bind(),
      naming_convention = self.cfg.naming_convention,
    })
  end
  return self.op_object
end

-- Target resolution -------------------------------------------------------------------------------------------

-- Checks a label@ prefix names a branch; returns nil, message when it does not.
function Runner:check_branch(label)
  if not label then return true end
  local on, err = self.graph:resolve_branch(label)
  if not on then return nil, err end
  return true
end

-- The revision an absolute anchor (head, heads, base, current, an id) stands for: a list of ids.
function Runner:anchor_ids(t, current)
  local g = self.graph
  local a = t.anchor
  if a == "heads" then
    return t.label and g:on_branch(g:heads(), t.label) or sorted_copy(g:heads())
  elseif a == "head" then
    local hs = t.label and g:on_branch(g:heads(), t.label) or g:heads()
    if #hs > 1 then
      if t.label then
        return nil, format("Multiple heads are present on branch '%s' (%s); name one", t.label, concat(sorted_copy(hs), ", "))
      end
      return nil, format("Multiple heads are present (%s); merge them with `luamig merge heads`, or name one "
        .. "(or `heads` for all)", concat(sorted_copy(hs), ", "))
    end
    return { hs[1] }
  elseif a == "base" then
    return {}
  elseif a == "current" then
    return sorted_copy(current)
  else
    local r, err = g:resolve_id(t.id, t.label)
    if not r then return nil, err end
    return { r.revision }
  end
end

local function single(ids, spec)
  if #ids > 1 then
    return nil, format("'%s' stands for several revisions (%s); a relative step needs one", spec, concat(ids, ", "))
  end
  return ids[1] or ""
end

-- resolve_upgrade(spec, current) -> list of target ids ({} = base), or nil, message
function Runner:resolve_upgrade(spec, current)
  local g = self.graph
  local t, err = target_grammar.parse(spec)
  if not t then return nil, err end
  local ok, berr = self:check_branch(t.label)
  if not ok then return nil, berr end
  if t.anchor == nil then
    if t.delta < 0 then return nil, format("'%s' is a step back: use `luamig downgrade %s`", spec, spec) end
    local starts = current
    if t.label then
      starts = g:on_branch(current, t.label)
      if #starts == 0 then
        -- the branch has no current head: start from its newest revision the database has
        local active = g:ancestors(current)
        local on = g:on_branch((function()
          local l = {}
          for id in pairs(active) do l[#l + 1] = id end
          return l
        end)(), t.label)
        local is_parent = {}
        for _, id in ipairs(on) do
          for _, p in ipairs(g:get(id).down_revisions) do is_parent[p] = true end
        end
        starts = {}
        for _, id in ipairs(on) do if not is_parent[id] then starts[#starts + 1] = id end end
      end
    end
    if #starts > 1 then
      return nil, format("Ambiguous upgrade from multiple current revisions (%s); name a revision or a branch (label@+1)",
        concat(sorted_copy(starts), ", "))
    end
    local reached, werr = g:walk(starts[1] or "", t.delta, spec, t.label)
    if not reached then return nil, werr end
    return reached == "" and {} or { reached }
  end
  if t.anchor == "heads" and t.delta then return nil, format("'%s': heads takes no relative step", spec) end
  local ids, aerr = self:anchor_ids(t, current)
  if not ids then return nil, aerr end
  if t.delta and t.delta ~= 0 then
    local start, serr = single(ids, spec)
    if not start then return nil, serr end
    local reached, werr = g:walk(start, t.delta, spec, t.delta > 0 and t.label or nil)
    if not reached then return nil, werr end
    return reached == "" and {} or { reached }
  end
  return ids
end

-- resolve_downgrade(spec, current) -> target id (false = base), branch (or nil); or nil, message
function Runner:resolve_downgrade(spec, current)
  local g = self.graph
  local t, err = target_grammar.parse(spec)
  if not t then return nil, err end
  local ok, berr = self:check_branch(t.label)
  if not ok then return nil, berr end
  local start, branch
  if t.anchor == nil then
    if t.delta > 0 then return nil, format("'%s' is a step forward: use `luamig upgrade %s`", spec, spec) end
    if t.label then
      local on = g:on_branch(current, t.label)
      if #on ~= 1 then
        return nil, format("'%s': the database has %s on branch '%s'", spec,
          #on == 0 and "no revision" or ("several revisions (" .. concat(on, ", ") .. ")"), t.label)
      end
      start, branch = on[1], t.label
    else
      if #current == 0 then
        return nil, format("Relative revision %s didn't produce %d migrations", spec, -t.delta)
      end
      if #current > 1 then
        return nil, format("Ambiguous downgrade from multiple current revisions (%s); name one, e.g. `luamig downgrade %s@-1`",
          concat(current, ", "), current[1])
      end
      start, branch = current[1], current[1]
    end
  else
    if t.anchor == "heads" and t.delta then return nil, format("'%s': heads takes no relative step", spec) end
    local ids, aerr = self:anchor_ids(t, current)
    if not ids then return nil, aerr end
    local s, serr = single(ids, spec)
    if not s then return nil, serr end
    start, branch = s, t.label
  end
  if t.delta == -1 and start ~= "" and g:is_merge_point(start) then
    -- one step back from a merge reverts the merge itself: its parents become heads again
    return g:get(start).down_revisions[1], start
  end
  if t.delta and t.delta ~= 0 then
    local reached, werr = g:walk(start, t.delta, spec, t.delta > 0 and t.label or nil)
    if not reached then return nil, werr end
    start = reached
  end
  return start ~= "" and start or false, branch
end

-- Running steps ----------------------------------------------------------------------------------------------

-- The file of the migration running now, for error_handler.
local running_chunk

-- Where in the migration file an error happened: the innermost stack level running that file.
local function error_handler(e)
  local line
  for level = 2, 200 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.source == running_chunk then
      line = info.currentline
      break
    end
  end
  return { err = e, line = line, traceback = traceback(type(e) == "string" and e or tostring(e), 2) }
end

-- step_label(direction, id, r) -> "upgrade a -> b" / "downgrade b -> a", made once per revision and direction
local labels = { upgrade = setmetatable({}, { __mode = "k" }), downgrade = setmetatable({}, { __mode = "k" }) }

local function step_label(direction, id, r)
  local l = labels[direction][r]
  if not l then
    if direction == "upgrade" then
      l = format("upgrade %s -> %s", join_heads(r.down_revisions), id)
    else
      l = format("downgrade %s -> %s", id, join_heads(r.down_revisions))
    end
    labels[direction][r] = l
  end
  return l
end

function Runner:ensure_tables()
  if self.tables_ready then return end
  for _, sql in ipairs(vt.create_sql(self.dialect, self.cfg.version_table)) do self:exec(sql) end
  self.tables_ready = true
end

-- The version-table change and the luamig_history row of one step (or stamp).
function Runner:record(old, new, row)
  local table_name = self.cfg.version_table
  row.version_table = table_name
  row.luamig_version = core.version
  if self.emit then
    self.emit(vt.change_text(self.dialect, table_name, old, new))
    self.emit(vt.history_text(self.dialect, table_name, row))
    return
  end
  for _, st in ipairs(vt.change_sql(self.dialect, table_name, old, new)) do
    self:exec(st.sql, st.params, st.expect, true)
  end
  row.applied_at = os.date("!%Y-%m-%d %H:%M:%S")
  local h = vt.history_sql(self.dialect, row)
  self:exec(h.sql, h.params, nil, true)
end

-- Formats a failure inside a step as one line naming the step, the file and line, and the statement.
local function describe_failure(label, r, e)
  local err = e.err
  local where = r and (r.shown .. (e.line and (":" .. e.line) or "")) or nil
  if getmetatable(err) == SqlErrorMT then
    return format("%s failed%s: %s; statement: %s", label, where and (" at " .. where) or "", one_line(err.msg),
      one_line(err.sql, 240))
  end
  local text = one_line(type(err) == "string" and err or tostring(err), 400)
  -- a Lua error raised in the file already starts with "file:line:"
  if r and text:sub(1, #r.shown + 1) == r.shown .. ":" then return format("%s failed at %s", label, text) end
  return format("%s failed%s: %s", label, where and (" at " .. where) or "", text)
end

-- Ends a failed step: rolls its transaction back (online, when the step owns it) and returns nil, error.
function Runner:step_failed(msg, details)
  if not self.outer_tx and not self.emit then
    local rok, rmsg = self.conn:exec("ROLLBACK")
    if not rok then
      details = details or {}
      details[#details + 1] = "ROLLBACK failed too: " .. tostring(rmsg)
    end
  end
  return nil, { msg = msg, details = details }
end

local function ensure_tables_of(self) self:ensure_tables() end
local function error_text(e) return e end

-- run_step(id, direction, expected) -> new heads; or "replan", heads_now; or nil, error {msg, details}
function Runner:run_step(id, direction, expected)
  local r = self.graph:get(id)
  local outer, emit = self.outer_tx, self.emit
  local label = step_label(direction, id, r)
  local t0 = core.clock()
  if emit then emit(format("-- %s, %s\n\n", label, r.message)) end
  if not outer then
    local ok, msg = self:tx("BEGIN")
    if not ok then return nil, { msg = format("cannot start a transaction for %s: %s", label, msg) } end
  end
  if not self.tables_ready then
    local tok, terr = xpcall(ensure_tables_of, error_text, self)
    if not tok then
      return self:step_failed(format("cannot create the version table %s: %s", self.cfg.version_table, tostring(terr)))
    end
  end
  local heads_now = expected
  if not emit then
    -- another runner may have moved the database since the plan was made: re-read inside the transaction
    local herr
    heads_now, herr = self:heads()
    if not heads_now then return self:step_failed(herr) end
    if not same_set(heads_now, expected) then
      if not outer then self.conn:exec("ROLLBACK") end
      return "replan", heads_now
    end
  end
  local fn = direction == "upgrade" and r.module.upgrade or r.module.downgrade
  running_chunk = r.chunkname or ("@" .. r.shown)
  local ok, e = xpcall(fn, error_handler, self:op())
  running_chunk = nil
  local new_heads
  if ok then
    new_heads = self.graph:heads_after(heads_now, id, direction)
    ok, e = xpcall(self.record, error_handler, self, heads_now, new_heads, { revision = id,
      down_revision = #r.down_revisions == 1 and r.down_revisions[1] or concat(r.down_revisions, ","),
      direction = direction, status = "applied",
      message = #r.message > 255 and r.message:sub(1, 255) or r.message,
      filename = #r.shown > 255 and r.shown:sub(-255) or r.shown, checksum = r.checksum,
      duration_ms = not emit and floor((core.clock() - t0) * 1000 + 0.5) or nil,
      version_table = false, luamig_version = false, applied_at = false })
  end
  if not ok then
    local details = { outer and "The whole run was rolled back; the database is as it was before it."
      or format("Rolled back: the database is as it was before %s.", id) }
    if emit then details = nil end
    if self.verbose and details then details[#details + 1] = e.traceback end
    return self:step_failed(describe_failure(label, r, e), details)
  end
  if not outer then
    local cok, cmsg = self:tx("COMMIT")
    if not cok then return self:step_failed(format("%s: COMMIT failed: %s", label, cmsg)) end
  end
  if emit then
    self.offline_heads = new_heads
    self.progress(label .. ", " .. r.message)
  else
    self.progress(format("%s, %s (%d ms)", label, r.message, floor((core.clock() - t0) * 1000 + 0.5)))
  end
  return new_heads
end

-- plan(direction, spec, current) -> steps, replan(current) -> steps; or nil, message
function Runner:plan(direction, spec, current)
  local g = self.graph
  if direction == "upgrade" then
    local targets, err = self:resolve_upgrade(spec, current)
    if not targets then return nil, err end
    local function replan(cur) return g:plan_upgrade(cur, targets) end
    return replan(current), replan
  end
  local target, branch = self:resolve_downgrade(spec, current)
  if target == nil then return nil, branch end
  local function replan(cur) return g:plan_downgrade(cur, target or nil, branch) end
  local steps, perr = replan(current)
  if not steps then return nil, perr end
  return steps, replan
end

-- check_known(heads) -> true, or nil, error when the database is at a revision no file defines
function Runner:check_known(heads)
  for _, h in ipairs(heads) do
    if not self.graph:get(h) then
      return nil, { msg = format("the database is at revision %s, which no migration file defines", h),
        details = { "Restore the missing file, or settle the version by hand with `luamig stamp`." } }
    end
  end
  return true
end

-- migrate(direction, spec, opts) -> number of steps applied, or nil, error {msg, details}
-- opts.single_transaction: one transaction around the whole run.
function Runner:migrate(direction, spec, opts)
  opts = opts or {}
  local current, err = self:heads()
  if not current then return nil, { msg = err } end
  local kok, kerr = self:check_known(current)
  if not kok then return nil, kerr end
  local plan, replan = self:plan(direction, spec, current)
  if not plan then return nil, { msg = replan } end
  local single_tx = opts.single_transaction or not self.cfg.transaction_per_migration
  local applied = 0
  if single_tx then
    local ok, msg = self:tx("BEGIN")
    if not ok then return nil, { msg = "cannot start a transaction: " .. tostring(msg) } end
    self.outer_tx = true
    if not self.emit then
      -- inside the transaction the heads are final: plan again from them
      current, err = self:heads()
      if not current then
        self.conn:exec("ROLLBACK")
        self.outer_tx = false
        return nil, { msg = err }
      end
      plan, err = replan(current)
      if not plan then
        self.conn:exec("ROLLBACK")
        self.outer_tx = false
        return nil, { msg = err }
      end
    end
  end
  local i = 1
  while i <= #plan do
    local res, info = self:run_step(plan[i], direction, current)
    if res == nil then
      if single_tx and not self.emit then self.conn:exec("ROLLBACK") end
      self.outer_tx = false
      return nil, info
    elseif res == "replan" then
      current = info
      local perr
      plan, perr = replan(current)
      if not plan then return nil, { msg = perr } end
      i = 1
    else
      current = res
      applied = applied + 1
      i = i + 1
    end
  end
  if single_tx then
    self.outer_tx = false
    local ok, msg = self:tx("COMMIT")
    if not ok then
      self.conn:exec("ROLLBACK")
      return nil, { msg = "COMMIT of the run failed: " .. tostring(msg) }
    end
  end
  return applied
end

-- stamp(specs, purge) -> the new version rows, or nil, error {msg}
-- Sets the version table to the given revisions without running migrations; --purge empties it first.
function Runner:stamp(specs, purge)
  local g = self.graph
  local targets = {}
  local is_base = false
  for _, spec in ipairs(specs) do
    local t, err = target_grammar.parse(spec)
    if not t then return nil, { msg = err } end
    local ok, berr = self:check_branch(t.label)
    if not ok then return nil, { msg = berr } end
    local ids, aerr
    if t.anchor == nil or t.delta then
      ids, aerr = self:resolve_upgrade(spec, {})
    else
      ids, aerr = self:anchor_ids(t, {})
    end
    if not ids then return nil, { msg = aerr } end
    if #ids == 0 then is_base = true end
    for _, id in ipairs(ids) do targets[#targets + 1] = id end
  end
  if is_base and #targets > 0 then return nil, { msg = "stamp: base cannot be combined with other revisions" } end
  local ok, msg = self:tx("BEGIN")
  if not ok then return nil, { msg = "cannot start a transaction: " .. tostring(msg) } end
  local new_heads
  local sok, e = xpcall(function()
    self:ensure_tables()
    local old
    if purge then
      self:exec(format("DELETE FROM %s", self.dialect:quote(self.cfg.version_table)))
      old = {}
    else
      local h, herr = self:heads()
      if not h then error(herr, 0) end
      for _, id in ipairs(h) do
        if not g:get(id) then
          error(format("the database is at revision %s, which no migration file defines; use stamp --purge", id), 0)
        end
      end
      old = h
    end
    new_heads = purge and sorted_copy(targets) or g:stamp_heads(old, targets)
    if same_set(old, new_heads) then return end
    local added = {}
    local was = {}
    for _, o in ipairs(old) do was[o] = true end
    for _, n in ipairs(new_heads) do if not was[n] then added[#added + 1] = n end end
    local first = added[1] or ""
    local r = g:get(first)
    self:record(old, new_heads, { revision = first ~= "" and first or "base", down_revision = concat(old, ","),
      direction = "stamp", status = "stamped", message = r and r.message:sub(1, 255) or nil,
      filename = r and r.shown:sub(-255) or nil, checksum = r and r.checksum or nil, duration_ms = 0 })
    self.progress(format("stamp %s -> %s", join_heads(old), join_heads(new_heads)))
  end, function(err) return err end)
  if not sok then
    if not self.emit then self.conn:exec("ROLLBACK") end
    local m = getmetatable(e) == SqlErrorMT and format("stamp failed: %s; statement: %s", one_line(e.msg), one_line(e.sql, 240))
      or tostring(e)
    return nil, { msg = m }
  end
  local cok, cmsg = self:tx("COMMIT")
  if not cok then return nil, { msg = "stamp: COMMIT failed: " .. tostring(cmsg) } end
  if self.emit then self.offline_heads = new_heads end
  return new_heads
end

return { new = new, SqlErrorMT = SqlErrorMT, one_line = one_line }
