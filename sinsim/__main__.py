from sinsim.cli import main

raise SystemExit(main())
