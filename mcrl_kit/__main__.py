from .bench import reexec_with_tcmalloc

# glibc malloc page-faults every fresh item-sized buffer; restart once under tcmalloc when
# it is installed (MCRL_TCMALLOC=0 turns this off; see mcrl_kit/bench.py)
reexec_with_tcmalloc()

from .cli import main  # noqa: E402  (after the restart: nothing heavy loaded twice)

raise SystemExit(main())
