"""``python -m labelsmooth``: the same command as the ``labelsmooth`` console script."""

from labelsmooth.cli import main

if __name__ == "__main__":
    main()
