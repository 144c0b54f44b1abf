"""Many buyers at once: SQLite queues writers, PostgreSQL runs them side by side."""

from concurrent.futures import ThreadPoolExecutor

from tests.helpers import count, order_body


def test_32_concurrent_clients_never_see_database_is_locked(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000), ("SKU-2", 500)])
    clients = [mallcore.client(kernel, "customer", f"c{i}") for i in range(32)]

    def buyer(i):
        client = clients[i]
        results = []
        for _ in range(5):
            r = client.post("/orders", json=order_body(lines=[("SKU-1", 1), ("SKU-2", 2)]))
            results.append(r.status_code)
            if r.status_code == 201:
                results.append(
                    client.post(f"/orders/{r.json()['id']}/payments", json={"method": "sandbox"}).status_code
                )
                results.append(client.get(f"/orders/{r.json()['id']}").status_code)
        return results

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = [s for result in pool.map(buyer, range(32)) for s in result]
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    assert count(kernel, "orders", status="paid") == 160
