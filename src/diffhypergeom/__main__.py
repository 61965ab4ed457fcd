import sys

from diffhypergeom.cli import main

sys.exit(main())
