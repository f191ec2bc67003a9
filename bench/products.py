"""The bench's own products: plenty of stock, so the throughput test measures the bus."""

BENCH_SKUS = [f"BENCH-{n}" for n in range(1, 9)]
