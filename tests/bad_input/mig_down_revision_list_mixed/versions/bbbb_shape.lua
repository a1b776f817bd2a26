return { revision = 'bbbb00000002', down_revision = { 'aaaa00000001', 3 }, upgrade = function() end, downgrade = function() end }
