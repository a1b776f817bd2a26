-- depends on another branch
return { revision = "c3", down_revision = "c2", depends_on = { "x9" }, branch_labels = { "reports" },
  upgrade = function(op) op.execute([[UPDATE t SET a = 1 -- "]]) end, downgrade = function() end }
