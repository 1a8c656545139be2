import os
import sys
from pathlib import Path

# Hermetic by default: only lofw's own plugins, whatever else is installed.
os.environ.setdefault("LOFW_DISABLE_PLUGIN_AUTOLOAD", "1")
sys.path.insert(0, str(Path(__file__).parent))
