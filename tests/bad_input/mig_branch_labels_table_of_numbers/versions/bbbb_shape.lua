return { revision = 'bbbb00000002', down_revision = 'aaaa00000001', branch_labels = { 1 }, upgrade = function() end, downgrade = function() end }
