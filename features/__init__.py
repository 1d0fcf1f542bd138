"""The built-in feature files, shipped as package data of deploy_verify and collected by its plugin."""
