import sys

from iaead_core.cli.main import main
sys.exit(main())
