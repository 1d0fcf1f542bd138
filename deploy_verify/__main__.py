"""`python -m deploy_verify init`: the same as the `deploy-verify` console script, for a venv without it on PATH."""

from deploy_verify.cli import main

raise SystemExit(main())
