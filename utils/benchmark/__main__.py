"""`python -m utils.benchmark`: the command line, `utils.benchmark.main`."""

from utils.benchmark import main

if __name__ == "__main__":
    main()
