import sys

from ecgdist.pretrain.main import main

sys.exit(main())
