import sys
from pathlib import Path

# Let the example import its app as `shop` without installing it.
sys.path.insert(0, str(Path(__file__).parent))
