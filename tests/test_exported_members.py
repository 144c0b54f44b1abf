"""The public surface of mallcore.kernel: what centers may import."""

import mallcore.kernel as kernel


def isort_style(name: str) -> tuple[int, str]:
    # constants, then classes, then functions: ruff's RUF022 order
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete():
    assert kernel.__all__ == sorted(kernel.__all__, key=isort_style)
    for name in kernel.__all__:
        assert hasattr(kernel, name), name


def test_the_names_centers_rely_on_are_exported():
    needed = {
        "Center",
        "hookimpl",
        "hookspec",
        "OrderContext",
        "Phase",
        "Rejected",
        "OutOfStock",
        "Conflict",
        "InvalidInput",
        "NotFound",
        "Forbidden",
        "Principal",
        "Caller",
        "require",
        "SYSTEM",
        "Job",
        "Kernel",
        "Payment",
        "Refund",
        "RefundItem",
        "allocate",
        "share",
        "utcnow",
        "load_config",
    }
    assert needed <= set(kernel.__all__)
