import sys

from evalsuite.pipeline import main

sys.exit(main())
