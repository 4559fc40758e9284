from bench.online.run import main

raise SystemExit(main())
