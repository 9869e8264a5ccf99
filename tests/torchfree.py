"""Code to prepend to a subprocess so that importing torch (or the oracle) fails."""
import textwrap

BLOCK_TORCH = textwrap.dedent("""
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "oracle"):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, BlockTorch())
""")
