import sys

from specgate.cli import main

sys.exit(main(["compile", *sys.argv[1:]]))
