return { revision = 'bbbb00000002', down_revision = 'aaaa00000001', downgrade = function() end }
