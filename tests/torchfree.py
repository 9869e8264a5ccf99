"""Code to prepend to a subprocess so that importing torch (or the oracle) fails."""
import textwrap


def blocking(*packages):
    """Python source that makes importing any of `packages` raise ImportError."""
    return textwrap.dedent(f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {packages!r}:
                    raise ImportError(f"{{name}} is blocked in this test")

        sys.meta_path.insert(0, Block())
    """)


BLOCK_TORCH = blocking("torch", "oracle")
