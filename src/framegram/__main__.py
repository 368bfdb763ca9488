"""`python -m framegram`, the same as the `framegram` command."""

from framegram.cli import main

main()
