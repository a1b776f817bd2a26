local M = { revision = "a1" }
M.revision = "a2"
function M.upgrade() end
function M.downgrade() end
return M
