from .cli import main

# the same as the `mcrl-kit` console script: no restart, the allocator is the process's own
# (the benchmark preloads tcmalloc itself: `make bench`, benchmarks/bench.py)
raise SystemExit(main())
