"""The example soak test: a day of recorded shop traffic, compressed, memory judged.

pytest examples/webshop                           # healthy shop: passes
SHOP_CART_DELETE_BUG=1 pytest examples/webshop    # the cart-delete bug: fails, naming the leak
"""

import pytest
from shop.app import app


@pytest.mark.soak(profile="spike-at-8am", peak_rps=150)
def test_shop_memory_is_stable(soak, replay_traffic):
    traffic = replay_traffic("traffic/shop.har")  # path relative to this file
    soak.run(app, traffic)  # raises SoakFailure (an AssertionError) on a leak
