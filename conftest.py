"""The suite's plugin is not registered here: it loads through its pytest11 entry point (deploy_verify.plugin), as it
does in a team's repository, because scripts/bootstrap installs this project into .venv in editable mode."""
