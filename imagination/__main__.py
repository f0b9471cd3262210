from imagination.cli import main

raise SystemExit(main())
