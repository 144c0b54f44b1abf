from hypothesis import given, settings
from hypothesis import strategies as st

from mallcore.kernel import allocate, share

amounts = st.integers(min_value=-(10**9), max_value=10**9)
weights = st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30)


@given(amounts, weights)
def test_allocation_always_sums_to_the_amount(amount, ws):
    assert sum(allocate(amount, ws)) == amount


@given(amounts, weights)
def test_each_part_is_within_one_unit_of_its_exact_share(amount, ws):
    parts = allocate(amount, ws)
    total = sum(ws)
    for part, w in zip(parts, ws, strict=True):
        exact = amount * w / total if total else amount / len(ws)
        assert abs(part - exact) < 1


@given(st.integers(min_value=0, max_value=10**9), weights)
def test_a_positive_amount_never_gives_a_line_a_negative_part(amount, ws):
    assert all(p >= 0 for p in allocate(amount, ws))


def test_ties_go_to_the_earlier_line():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]


def test_zero_weights_split_evenly_and_no_weights_only_for_zero():
    assert allocate(5, [0, 0]) == [3, 2]
    assert allocate(0, []) == []


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=1, max_value=500),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20),
)
@settings(max_examples=200)
def test_successive_partial_shares_never_exceed_the_total(total, quantity, chunks):
    taken = done = 0
    for chunk in chunks:
        chunk = min(chunk, quantity - done)
        if chunk <= 0:
            break
        taken += share(total, quantity, done + chunk) - share(total, quantity, done)
        done += chunk
    assert taken <= total
    if done == quantity:
        assert taken == total


def test_amounts_are_formatted_by_the_currencys_minor_unit():
    from mallcore.kernel import format_amount

    assert format_amount(12345, "CNY") == "¥123.45"
    assert format_amount(-5, "USD") == "-$0.05"
    assert format_amount(500, "JPY") == "JP¥500"
    assert format_amount(1234, "XTS") == "XTS 12.34"
