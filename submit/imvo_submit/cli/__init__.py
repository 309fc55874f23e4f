"""`imvo-submit`, the companies' command line (main.py), and what the secretariat's command line shares with it."""
