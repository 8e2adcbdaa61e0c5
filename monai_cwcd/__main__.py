"""``python -m monai_cwcd``: the same as the ``monai-cwcd`` command."""

from monai_cwcd.cli import main

if __name__ == "__main__":
    main()
