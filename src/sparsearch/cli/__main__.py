import sys

from sparsearch.cli import main

sys.exit(main())
