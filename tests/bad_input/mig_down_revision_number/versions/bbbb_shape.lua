return { revision = 'bbbb00000002', down_revision = 7, upgrade = function() end, downgrade = function() end }
