return { revision = 'bbbb00000002', down_revision = 'aaaa00000001', depends_on = 'zzzz', upgrade = function() end, downgrade = function() end }
