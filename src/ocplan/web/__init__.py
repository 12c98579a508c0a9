"""The workbench web app."""
